"""What the screenshot scripts share: driving the Qt event loop until the app is where the picture needs
it, and capturing what the X server shows (ImageMagick's `import` when installed, else Qt's own grab)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def wait(app, condition, timeout_s: float = 300.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.6) -> None:
    """Let charts redraw and thumbnails land."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def capture(app, path: Path, window, *, only_window: bool = False, settle_s: float = 0.6) -> None:
    """The whole screen, or only `window` (a dialog without the main window behind it)."""
    settle(app, settle_s)
    if shutil.which("import") and os.environ.get("DISPLAY"):
        target = hex(int(window.winId())) if only_window else "root"
        subprocess.run(["import", "-window", target, str(path)], check=True)
    else:
        window.grab().save(str(path))
    print(path.relative_to(ROOT))
