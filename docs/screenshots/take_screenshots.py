"""Screenshots for the docs, taken from the real app on a virtual X display.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/screenshots/take_screenshots.py

writes `welcome-light.png`, `welcome-dark.png` (the first-run welcome screen over the main window) and
`demo-project.png` (the app on the demo project, Train tab) here. It uses fresh temporary config and data
folders, so what is shown is exactly what a new user sees; the screen is captured with ImageMagick's
`import` when it is installed (else Qt grabs it), so the picture is what the X server shows.
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








def run_app(theme: str, shot: str, *, demo: bool) -> None:
    """One fresh user: their theme chosen, then the first start (welcome) or the demo project."""
    from dataclasses import replace

    from studio.paths import CONFIG_ENV, DATA_ENV
    from ui.app import create_application, open_main_window
    from ui.settings import AppSettings, save_settings

    home = Path(tempfile.mkdtemp(prefix="lora-studio-shot-"))
    os.environ[CONFIG_ENV] = str(home / "config")
    os.environ[DATA_ENV] = str(home / "data")
    save_settings(replace(AppSettings(), theme=theme))
    app = create_application()
    window, shell = open_main_window(None, start_worker=demo)
    window.setGeometry(0, 0, 1400, 900)
    window.show()
    shell.start(None, demo=demo)
    if demo:
        wait(app, lambda: window.project_file is not None and window.project_loaded, 120)
        wait(app, lambda: window.worker.state == "ready", 120)
        capture(app, HERE / shot, window)
    else:
        wait(app, lambda: shell.welcome is not None and shell.welcome.hardware is not None, 120)
        capture(app, HERE / shot, shell.welcome, only_window=True)
        shell.welcome.reject()
    window.close()
    wait(app, lambda: not window.isVisible() and not window.worker.running, 60)
    settle(app, 0.2)
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("QT_QPA_PLATFORM", None)  # the real X display, not offscreen
    run_app("light", "welcome-light.png", demo=False)
    run_app("dark", "welcome-dark.png", demo=False)
    run_app("light", "demo-project.png", demo=True)


if __name__ == "__main__":
    main()
