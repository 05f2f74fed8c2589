"""Run as a child by tests/test_window_no_torch.py: drive the window through the paths that read models,
LoRAs and images, then print one JSON line saying which heavy libraries this process imported.

argv: MODELS_FOLDER LORA IMAGES_FOLDER [--demo]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors")


def main(argv: list[str]) -> int:
    models, lora, images = (Path(a) for a in argv[:3])
    from PySide6.QtWidgets import QApplication

    from ui.app import open_main_window

    app = QApplication(["lora-studio"])
    window, shell = open_main_window(None, start_worker=False)
    window.show()

    def wait(what: str, cond, timeout_s: float = 120.0) -> None:
        end = time.monotonic() + timeout_s
        while not cond():
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")

    done: dict[str, object] = {}
    wait("the project", lambda: window.project_loaded)
    picker = window.train_panel.model_picker
    picker.set_folders([str(models)])
    picker.rescan()
    wait("the model scan", lambda: not picker.scanning and picker._models)
    done["models"] = sorted((m.path.name, m.family) for m in picker._models)

    panel = window.dataset_panel
    panel.add_folders([images])
    wait("the dataset", lambda: panel.model.rowCount() > 0)
    checked: list[bool] = []
    panel.check_finished.connect(lambda *_: checked.append(True))
    panel.run_check()
    wait("the image check", lambda: checked)
    done["images"] = panel.model.rowCount()

    row = window.mixer_panel.add_lora(lora)
    done["lora"] = None if row is None else row.info.family

    if "--demo" in argv:
        dialog = shell.show_welcome()
        dialog.demo_button.click()
        wait("the demo project", lambda: window.project_file is not None
             and window.project_file.name == "project.toml" and window.project_loaded, timeout_s=600)
        done["demo"] = str(window.project_file)
    done["imported"] = sorted(m for m in HEAVY if m in sys.modules)
    window.worker.shutdown(timeout_s=10)
    window.worker.wait_exited(15)
    print(json.dumps(done), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
