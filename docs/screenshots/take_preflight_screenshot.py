"""Screenshot for issue 18: the pre-flight summary on a CPU machine, at 1024×700.

    xvfb-run -s "-screen 0 1280x800x24" env QT_QPA_PLATFORM=xcb .venv/bin/python \
        docs/screenshots/take_preflight_screenshot.py

writes `preflight-cpu.png` here. The worker really starts, so the device in the picture is the one it
reports (on a machine without a usable GPU: the CPU defaults, the CPU notice). The dataset is the bundled
demo photos in two kohya folders (`10_photos`, `2_more`); the user then raises Resolution to 512, as
someone coming from an SD 1.5 guide would, so the summary shows its warning and what differs, and closes the
banner that listed the defaults chosen for the CPU.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from screen_helpers import capture, settle, wait  # noqa: E402


def dataset(root: Path) -> Path:
    photos = sorted((ROOT / "resources" / "demo" / "images").glob("*.jpg"))
    for folder, part in (("10_photos", photos[:5]), ("2_more", photos[5:])):
        (root / folder).mkdir(parents=True)
        for image in part:
            shutil.copy(image, root / folder / image.name)
            shutil.copy(image.with_suffix(".txt"), root / folder / image.with_suffix(".txt").name)
    return root


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="lora-studio-shots-"))
    os.environ["LORA_STUDIO_CONFIG_DIR"] = str(home / "config")
    os.environ["LORA_STUDIO_DATA_DIR"] = str(home / "data")
    from ui.app import create_application, open_main_window

    app = create_application()
    window, _shell = open_main_window(None)  # the worker starts: it names the device
    window.resize(1024, 700)
    window.show()
    window.tabs.setCurrentWidget(window.train_panel)
    panel = window.train_panel
    wait(app, lambda: window.worker.state == "ready" and panel.preflight.device is not None, 600)
    folders = panel.form.editor("dataset", "folders")
    folders.set_value((str(dataset(home / "data" / "alice")),))
    panel.form.editor("dataset", "resolution").set_value(512)
    panel.form.changed.emit()
    wait(app, lambda: panel.preflight.summary is not None and panel.preflight.summary.images > 0
         and panel.preflight.summary.estimate.step_s > 5, 30)
    panel.banner.hide()  # the user read which defaults were chosen (they stay in the Log) and closed it
    capture(app, HERE / "preflight-cpu.png", window, only_window=True, settle_s=1.0)
    window.worker.kill()
    window.worker.wait_exited(20)
    window._close_ready = True
    window.close()


if __name__ == "__main__":
    main()
