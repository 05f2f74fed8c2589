"""Screenshots of the Train panel, idle and mid-run, taken from the real app on a virtual X display.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/screenshots/take_train_screenshots.py

writes `train-idle.png` (a project open, the worker ready) and `train-running.png` (a tiny-model run with
the loss chart and previews filling in) here. The project is a throw-away one in a temporary folder: a
tiny random SD 1.5-architecture model and generated images, so the previews show noise, not art.
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

from screen_helpers import capture, wait  # noqa: E402






def make_project(folder: Path) -> Path:
    from studio.config import save_project
    from studio.models.tiny import save_tiny_model
    from tests.conftest import make_images, tiny_config

    save_tiny_model(folder / "model", "sd1", seed=0)
    data = make_images(folder / "data", n=8, size=(64, 64))
    cfg = tiny_config(folder / "model", data, folder / "out", schedule={"max_steps": 400, "batch_size": 2},
                      sampling={"every_n_steps": 4, "prompts": ("photo, red thing", "photo, blue thing, night"),
                                "steps": 4},
                      output={"save_every_n_steps": 8, "name": "my-first-lora"})
    project = folder / "project.toml"
    save_project(cfg, project)
    return project


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("QT_QPA_PLATFORM", None)  # the real (virtual) X display, not offscreen
    from studio.paths import CONFIG_ENV, DATA_ENV
    from ui.app import create_application, open_main_window

    tmp = Path(tempfile.mkdtemp(prefix="lora-studio-train-shot-"))
    os.environ[CONFIG_ENV] = str(tmp / "config")  # a fresh user: default settings and theme
    os.environ[DATA_ENV] = str(tmp / "user-data")
    app = create_application()
    project = make_project(tmp)
    window, shell = open_main_window(project)  # the real app: window plus desktop shell (theme, menus)
    window.setGeometry(0, 0, 1400, 900)
    window.show()
    shell.start(project)
    panel = window.train_panel
    wait(app, lambda: window.project_loaded and window.worker.state == "ready")
    capture(app, HERE / "train-idle.png", window, settle_s=1.0)

    panel.controls.start_button.click()
    wait(app, lambda: panel.last_step >= 14 and panel.gallery.count() >= 6
         and all(t.loaded for t in panel.gallery.thumbnails), timeout_s=1200)
    capture(app, HERE / "train-running.png", window, settle_s=1.0)
    panel.controls.stop_button.click()
    wait(app, lambda: panel.run_state == "idle")
    window.worker.shutdown(30)
    window.worker.wait_exited(30)
    window._close_ready = True
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
