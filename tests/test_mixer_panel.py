"""Acceptance 3 of the mixer: load two LoRAs, move a slider, get a new preview, export, inspect the export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def two_loras(tmp_path_factory) -> tuple[Path, Path]:
    from studio.models.tiny import build_tiny_pipeline
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    pipe = build_tiny_pipeline("sd1")
    d = tmp_path_factory.mktemp("panel-loras")
    return tuple(write_kohya(random_lora(pipe, "sd1", rank=4, alpha=2.0, seed=s, scale=0.35,
                                         metadata=lora_metadata("sd1", name, {f"{name} tag": 5, "photo": 2})),
                             d / f"{name}.safetensors")
                 for s, name in ((3, "character"), (4, "style")))


@pytest.fixture
def panel(qtbot, tiny_sd1):
    from tests.mixer_helpers import InProcessJobs
    from ui.panels.mixer_panel import MixerPanel

    panel = MixerPanel(InProcessJobs(), debounce_ms=10)
    qtbot.addWidget(panel)
    panel.size.setCurrentText("64×64")
    panel.steps.setValue(2)
    panel.prompt.setText("photo, thing 1, red")
    panel.set_base_model(tiny_sd1)
    panel.resize(1100, 800)
    return panel


def _pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_two_loras_slider_preview_and_export(qtbot, panel, two_loras, tmp_path, capsys):
    from studio.cli import main

    with qtbot.waitSignal(panel.preview_shown, timeout=TIMEOUT_MS):
        for path in two_loras:
            assert panel.add_lora(path) is not None
    assert [r.info.name for r in panel.rows] == ["character", "style"]
    row = panel.rows[0]
    assert row.info.family == "sd1" and row.info.ranks == (4,)
    assert "character tag" in row.triggers.text()
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT_MS)
    first = panel.preview.path
    first_pixels = _pixels(first)

    # the user drags the first slider to 1.5: the old image stays until the new one arrives
    with qtbot.waitSignal(panel.preview_shown, timeout=TIMEOUT_MS) as shown:
        row.strength.slider.setValue(30)  # 30 steps of 0.05
        assert panel.preview.path == first
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT_MS)
    assert row.entry().strength == 1.5
    second = shown.args[0]
    assert second != first and np.abs(_pixels(second) - first_pixels).mean() > 0.5

    # the second LoRA goes negative through its number box, its text encoder held at 0.5
    panel.rows[1].strength.box.setValue(-0.35)
    panel.rows[1].split.setChecked(True)
    panel.rows[1].te.setValue(0.5)
    qtbot.waitUntil(lambda: not panel.busy and not panel._timer.isActive(), timeout=TIMEOUT_MS)

    out = tmp_path / "mixed.safetensors"
    panel.export.ask_path = lambda *_: str(out)
    with qtbot.waitSignal(panel.exported, timeout=TIMEOUT_MS):
        qtbot.waitUntil(lambda: panel.export.export_button.isEnabled(), timeout=TIMEOUT_MS)
        panel.export.export_button.click()
    assert out.exists() and panel.export.open_folder.isEnabled()

    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    sources = [(s["name"], s["strength"], s["unet"], s["te"]) for s in data["mix_sources"]]
    assert sources == [("character", 1.5, None, None), ("style", -0.35, -0.35, 0.5)]
    assert data["merged_from"] == "character, style"


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_strength_grid_renders_labelled_sheet(qtbot, panel, two_loras):
    for path in two_loras:
        panel.add_lora(path)
    qtbot.waitUntil(lambda: panel.preview.images_shown >= 1 and not panel.busy, timeout=TIMEOUT_MS)
    panel.tabs.setCurrentWidget(panel.grid)
    panel.grid.x_values.setText("0, 1")
    panel.grid.y_values.setText("0, 0.5, 1")
    with qtbot.waitSignal(panel.grid_shown, timeout=TIMEOUT_MS) as shown:
        panel.grid.render_button.click()
    sheet = Image.open(shown.args[0])
    assert sheet.width > 2 * 64 and sheet.height > 3 * 64  # 2 × 3 cells plus labels


def test_wrong_family_lora_is_flagged_and_left_out(qtbot, panel, two_loras, tmp_path):
    from studio.models.tiny import build_tiny_pipeline
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    xl = write_kohya(random_lora(build_tiny_pipeline("sd2"), "sd2", metadata=lora_metadata("sd2", "other")),
                     tmp_path / "other.safetensors")
    panel.add_lora(two_loras[0])
    row = panel.add_lora(xl)
    assert row is not None and not row.warning.isHidden()
    assert "Made for SD 2.x" in row.warning.text()
    assert [e.path for e in panel.entries()] == [str(two_loras[0])]
    assert panel.add_lora(tmp_path / "missing.safetensors") is None
    assert "cannot read" in panel.status.text()
    qtbot.waitUntil(lambda: not panel.busy and not panel._timer.isActive(), timeout=TIMEOUT_MS)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_preview_through_the_worker_process(qtbot, tiny_sd1, two_loras):
    """The app's wiring: the panel on a WorkerClient, the worker started on demand, the image coming back."""
    from ui.jobs import JobManager
    from ui.panels.mixer_panel import MixerPanel
    from ui.worker_client import WorkerClient

    client = WorkerClient()
    panel = MixerPanel(JobManager(client), debounce_ms=10)
    qtbot.addWidget(panel)
    try:
        panel.size.setCurrentText("64×64")
        panel.steps.setValue(2)
        panel.set_base_model(tiny_sd1)
        with qtbot.waitSignal(panel.preview_shown, timeout=TIMEOUT_MS):
            panel.add_lora(two_loras[0])  # the worker is not running yet: the request waits for `ready`
        qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT_MS)
        with qtbot.waitSignal(panel.preview_shown, timeout=TIMEOUT_MS):
            panel.rows[0].strength.box.setValue(0.25)
        assert "base model loaded" not in panel.preview.caption.text()  # reused, not reloaded
    finally:
        client.shutdown(30)
        client.wait_exited(30)
