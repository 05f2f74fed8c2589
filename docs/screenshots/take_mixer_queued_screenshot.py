"""Screenshot of the Mixer with a preview queued behind a running training, in the real app.

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python docs/screenshots/take_mixer_queued_screenshot.py

writes `mixer-queued-preview.png` here: a tiny-model training runs in the worker (started from the Train
panel, through the window's JobManager), then two LoRAs go into the Mixer, whose preview is submitted to
the same queue and waits behind the training — the preview area says "queued: runs after the training
job" with its progress bar, and the Jobs dock lists the running training (steps, ETA) above the queued
preview. Everything is made on the spot in a temporary folder (a tiny random SD 1.5-architecture model,
generated images, random LoRAs), so nothing is downloaded.
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
from take_mixer_screenshot import make_inputs  # noqa: E402


def make_project(folder: Path, base: Path) -> Path:
    """A long run on the tiny base model, without previews, so the training is still going at the shot."""
    from studio.config import save_project
    from tests.conftest import make_images, tiny_config

    data = make_images(folder / "data", n=8, size=(64, 64))
    cfg = tiny_config(base, data, folder / "out", schedule={"max_steps": 400, "batch_size": 1},
                      sampling={"every_n_steps": 0}, output={"save_every_n_steps": 0, "name": "my-first-lora"})
    project = folder / "project.toml"
    save_project(cfg, project)
    return project


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from studio.paths import CONFIG_ENV, DATA_ENV
    from ui.app import create_application, open_main_window
    from ui.jobs import QUEUED

    tmp = Path(tempfile.mkdtemp(prefix="lora-studio-queued-shot-"))
    os.environ[CONFIG_ENV] = str(tmp / "config")  # a fresh user: default settings and theme
    os.environ[DATA_ENV] = str(tmp / "user-data")
    app = create_application()
    base, loras = make_inputs(tmp)
    project = make_project(tmp, base)
    window, shell = open_main_window(project)  # the real app: window plus desktop shell (theme, menus)
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    shell.start(project)
    train = window.train_panel
    wait(app, lambda: window.project_loaded and window.worker.state == "ready")

    train.preflight.ask = lambda _title, _text: True  # "Start anyway" to the CPU notice
    train.controls.start_button.click()
    wait(app, lambda: train.last_step >= 3, timeout_s=600)

    window.show_panel(2)
    mixer = window.mixer_panel
    mixer.size.setCurrentText("128×128")
    mixer.steps.setValue(8)
    mixer.prompt.setText("1girl, red jacket, ink wash, portrait")
    mixer.set_base_model(base)
    for path in loras:
        mixer.add_lora(path)
    mixer.rows[0].strength.setValue(0.8)
    mixer.rows[1].strength.setValue(0.55)
    wait(app, lambda: mixer._preview_job is not None and not mixer._timer.isActive())
    if mixer._preview_job.state != QUEUED:
        raise SystemExit(f"the preview is not queued behind the training: {mixer._preview_job!r}")
    window.jobs_dock.show()
    step = train.last_step
    wait(app, lambda: train.last_step >= step + 2, timeout_s=300)  # the training's bar has moved on
    settle(app, 1.0)
    capture(app, HERE / "mixer-queued-preview.png", window, settle_s=1.0)

    train.controls.stop_button.click()
    wait(app, lambda: train.run_state == "idle", timeout_s=300)
    window.worker.shutdown(30)
    window.worker.wait_exited(30)
    window._close_ready = True
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
