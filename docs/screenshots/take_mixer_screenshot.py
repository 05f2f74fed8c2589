"""Screenshot of the Mixer: two LoRAs, a preview and a labelled strength grid, rendered by the real worker.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/screenshots/take_mixer_screenshot.py

writes `mixer.png` here. Everything is made on the spot in a temporary folder: a tiny random SD 1.5-
architecture model and two random LoRAs with trigger-word metadata, so the images show structured
noise, not art — what matters is the desk, the preview and the grid layout.
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

from screen_helpers import settle, wait  # noqa: E402


def make_inputs(folder: Path) -> tuple[Path, list[Path]]:
    from studio.models.tiny import save_tiny_model
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    pipe = save_tiny_model(folder / "tiny-sd15", "sd1", seed=0)
    loras = []
    for seed, name, tags in ((3, "red-jacket-character", {"red jacket": 41, "1girl": 40, "short hair": 22}),
                             (4, "ink-wash-style", {"ink wash": 55, "monochrome": 31, "brush strokes": 18})):
        lf = random_lora(pipe, "sd1", rank=8, alpha=4.0, seed=seed, scale=0.35, metadata=lora_metadata("sd1", name, tags))
        loras.append(write_kohya(lf, folder / f"{name}.safetensors"))
    return folder / "tiny-sd15", loras


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ui.app import create_application
    from ui.jobs import JobManager
    from ui.panels.mixer_panel import MixerPanel
    from ui.theme import apply_theme
    from ui.worker_client import WorkerClient

    tmp = Path(tempfile.mkdtemp(prefix="lora-studio-mixer-shot-"))
    app = create_application()
    apply_theme(app, "light")
    base, loras = make_inputs(tmp)
    client = WorkerClient()
    jobs = JobManager(client)  # the window's one job queue; here the panel's alone
    panel = MixerPanel(jobs)
    panel.setWindowTitle("LoRA Studio — Mixer")
    panel.resize(1400, 900)
    panel.show()
    client.start()
    panel.size.setCurrentText("128×128")
    panel.steps.setValue(8)
    panel.prompt.setText("1girl, red jacket, ink wash, portrait")
    panel.set_base_model(base)
    for path in loras:
        panel.add_lora(path)
    panel.rows[0].strength.setValue(0.8)
    panel.rows[1].strength.setValue(0.55)
    panel.rows[1].blocks_toggle.setChecked(True)
    panel.rows[1].blocks.set_preset("OUTALL")
    panel.schedule_preview()
    wait(app, lambda: panel.preview.images_shown >= 1 and not panel.busy and not panel._timer.isActive(),
         600)

    panel.tabs.setCurrentWidget(panel.grid)
    panel.grid.render_button.click()
    wait(app, lambda: panel.grid.view.images_shown >= 1 and not panel.busy, 600)
    settle(app)
    out = HERE / "mixer.png"
    panel.grab().save(str(out))
    print(out.relative_to(ROOT))
    jobs.shut_down()
    client.shutdown(30)
    client.wait_exited(30)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
