"""bench/gpu_step.py works: its --tiny-cpu mode runs the real code path on the tiny SDXL model (size
conditioning included) and writes the result files; without a GPU the default mode exits 0 with a note."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def load_bench():
    spec = importlib.util.spec_from_file_location("gpu_step", ROOT / "bench" / "gpu_step.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_tiny_cpu_mode_writes_results(tmp_path):
    bench = load_bench()
    assert bench.main(["--tiny-cpu", "--models", "sdxl", "--checkpointing", "on", "--steps", "1", "--warmup", "1",
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gpu_step_tiny.json").read_text())
    assert data["environment"]["tiny_models"] is True
    runs = data["results"]
    assert [(r["impl"], r["status"]) for r in runs] == [("reference", "ok"), ("ours", "ok")]
    for r in runs:
        assert r["model"] == "sdxl" and r["batch"] == 1 and r["gradient_checkpointing"] is True
        assert r["step_s"] > 0 and r["images_per_s"] > 0 and r["model_tflop_per_step"] > 0
        assert r["loss"] is not None and r["loss"] == r["loss"]  # finite, not NaN
        assert r["lora_updated"] is True  # gradients reach the LoRA through gradient checkpointing
    # the same LoRA on the same layers in both loops
    assert runs[0]["trainable_params"] == runs[1]["trainable_params"] > 0
    md = (tmp_path / "gpu_step_tiny.md").read_text()
    assert "| sdxl | 64 | 1 | on | ours |" in md and "smoke test" in md


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_without_gpu_it_exits_zero_with_a_note(tmp_path, capsys):
    bench = load_bench()
    assert bench.main(["--out", str(tmp_path)]) == 0
    assert "needs a CUDA GPU" in capsys.readouterr().out
    assert json.loads((tmp_path / "gpu_step.json").read_text())["status"] == "skipped"
    assert "not run" in (tmp_path / "gpu_step.md").read_text()
