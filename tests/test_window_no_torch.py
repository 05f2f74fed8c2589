"""Issue 14: the window's process never imports torch (or diffusers, transformers, peft, safetensors).

The window runs in a child process (the test process has torch loaded already) and is driven through the
paths that read weights: the model picker scanning a folder with a `.safetensors` and a `.ckpt`, a dataset
folder and its image check, a LoRA added to the mixer, and (slow: it starts the worker) welcome → demo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from studio.paths import CONFIG_ENV, DATA_ENV  # noqa: E402

SCRIPT = Path(__file__).with_name("window_no_torch_script.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_sd1, image_folder) -> tuple[Path, Path, Path]:
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    from studio.models.load import load_components
    from studio.models.original_layout import save_original_checkpoint
    from tests.lora_maker import random_lora, write_kohya

    folder = tmp_path_factory.mktemp("no-torch")
    models = folder / "models"
    models.mkdir()
    c = load_components(tiny_sd1)
    save_original_checkpoint(models / "one.safetensors", "sd1", c.unet, c.vae, c.text_encoders,
                             tokenizers=c.tokenizers, dtype=torch.float16)
    torch.save({"state_dict": load_file(str(models / "one.safetensors"))}, models / "two.ckpt")
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1, local_files_only=True)
    lora = write_kohya(random_lora(pipe, "sd1"), folder / "style.safetensors")
    return models, lora, image_folder


def run_window(tmp_path: Path, files, *extra: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", CONFIG_ENV: str(tmp_path / "config"),
           DATA_ENV: str(tmp_path / "data"), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), *map(str, files), *extra], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_picker_dataset_check_and_mixer_leave_torch_out_of_the_window(tmp_path, files):
    result = run_window(tmp_path, files)
    assert result["models"] == [["one.safetensors", "sd1"], ["two.ckpt", "sd1"]]
    assert result["images"] > 0 and result["lora"] == "sd1"
    assert result["imported"] == []


@pytest.mark.slow  # starts the worker, which builds the demo's tiny model
def test_welcome_demo_is_built_by_the_worker_not_the_window(tmp_path, files):
    result = run_window(tmp_path, files, "--demo")
    assert Path(result["demo"]) == (tmp_path / "data").resolve() / Path(result["demo"]).relative_to(
        (tmp_path / "data").resolve())
    assert Path(result["demo"]).is_file() and (Path(result["demo"]).parent / "model" / "model_index.json").is_file()
    assert result["imported"] == []
