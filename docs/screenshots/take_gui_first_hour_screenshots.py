"""Screenshots for issue 18 ("GUI first hour"): the dark theme's Train panel with an error banner, and the
window at 1024×700 with nothing cut off.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/take_gui_first_hour_screenshots.py

(or under `xvfb-run`), writes `train-dark-error.png` and `window-1024x700.png` here. The theme is switched
live after the window exists, as a user does in Preferences, so the pictures also show that banners and
charts follow a switch without a restart.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from screen_helpers import capture, settle  # noqa: E402


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="lora-studio-shots-"))
    os.environ["LORA_STUDIO_CONFIG_DIR"] = str(home / "config")
    os.environ["LORA_STUDIO_DATA_DIR"] = str(home / "data")
    from ui.app import create_application, open_main_window
    from ui.theme import apply_theme

    app = create_application()
    window, _shell = open_main_window(None, start_worker=False)  # the window with the desktop shell's menus
    apply_theme(app, "light")
    window.resize(1024, 700)
    window.show()
    window.tabs.setCurrentWidget(window.train_panel)
    for step in range(1, 121):  # a run's first steps, so the chart has curves to recolour
        loss = 0.12 + 0.08 * math.exp(-step / 40) + 0.01 * math.sin(step)
        window.train_panel.chart.add(step, loss, 0.12 + 0.08 * math.exp(-step / 40), 1e-4 * min(1, step / 20))
    settle(app)
    apply_theme(app, "dark")  # live, as from Preferences
    window.train_panel.banner.show_message(
        "error", "The run stopped: CUDA ran out of memory at step 120.",
        "Lower the batch size or turn on gradient checkpointing, then resume from the last checkpoint.",
        "Resume")
    capture(app, HERE / "train-dark-error.png", window, only_window=True, settle_s=1.2)
    window.train_panel.banner.hide()
    window.tabs.setCurrentWidget(window.dataset_panel)
    capture(app, HERE / "window-1024x700.png", window, only_window=True)
    window._close_ready = True
    window.close()


if __name__ == "__main__":
    main()
