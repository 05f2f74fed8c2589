"""A screenshot of the Dataset panel on the demo images.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/take_dataset_screenshot.py

writes `dataset-panel.png` here. The demo images are copied to a temporary folder first, and a few
things a real dataset has are added so the badges show: an image without a caption, a file that is not
an image, an exact duplicate, one image excluded and one with a focus point. The check runs before the
grab, so the Problems tab and the badges are filled in.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio.dataset.thumbnails import ThumbnailCache
    from ui.panels.dataset_panel import DatasetPanel

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="dataset-shot-"))
    try:
        data = work / "project" / "10_demo"
        shutil.copytree(ROOT / "resources" / "demo" / "images", data)
        (data / "coffee.txt").unlink()  # one without a caption
        (data / "notes.png").write_text("a text file with an image extension", encoding="utf-8")
        shutil.copy(data / "chelsea.jpg", data / "chelsea-copy.jpg")
        panel = DatasetPanel(cache=ThumbnailCache(work / "cache"),
                             settings=QSettings(str(work / "s.ini"), QSettings.Format.IniFormat))
        panel.resize(1400, 860)
        panel.show()
        panel.set_project(["10_demo"], work / "project", resolution=512)
        finished = []
        panel.check_finished.connect(lambda: finished.append(True))
        end = time.monotonic() + 60
        while not finished and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)
        paths = {p.name: p for p in panel.model.paths()}
        panel.set_excluded([paths["rocket.jpg"]], True)
        panel.select_path(paths["astronaut.jpg"])
        panel.focus_picker.focus_changed.emit((0.48, 0.3))
        panel.editor.set_mode("tags")
        panel._refresh_frequencies()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)
        out = HERE / "dataset-panel.png"
        panel.grab().save(str(out))
        print(out)
        panel.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
