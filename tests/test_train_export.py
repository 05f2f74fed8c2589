"""End-to-end: train on the tiny SD 1.5 model, export, and load the file the way users' tools do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from studio.events import Checkpoint, Failed, Finished
from studio.train.engine import run_training
from tests.conftest import tiny_config
from tests.diffusers_helpers import load_lora_collecting_messages, render, sd_pipeline

RANK, ALPHA = 4, 2.0


@pytest.fixture(scope="module")
def trained(tiny_sd1, image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    cfg = tiny_config(tiny_sd1, image_folder, out, network={"rank": RANK, "alpha": ALPHA, "train_text_encoder": True},
                      optimizer={"unet_lr": 5e-3, "text_encoder_lr": 5e-3}, schedule={"max_steps": 4, "batch_size": 2})
    events = list(run_training(cfg))
    assert not [e for e in events if isinstance(e, Failed)], events[-1]
    finished = events[-1]
    assert isinstance(finished, Finished)
    checkpoint = [e for e in events if isinstance(e, Checkpoint)][-1]
    return cfg, Path(finished.outputs[-1]), Path(checkpoint.path)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_export_loads_in_diffusers_and_matches_peft_model(trained, tiny_sd1):
    from peft.utils import set_peft_model_state_dict

    from studio.train.checkpoint import load_adapters
    from studio.train.networks import adapter_config as lora_config
    from studio.train.targets import TEXT_ENCODER, unet_targets

    cfg, lora_path, checkpoint = trained
    base = render(sd_pipeline(tiny_sd1))

    # the file, loaded as users load it, with every warning collected
    pipe = sd_pipeline(tiny_sd1)
    messages = load_lora_collecting_messages(pipe, lora_path)
    key_problems = [m for m in messages if "unexpected" in m.lower() or "missing" in m.lower()
                    or "not loaded" in m.lower() or "could not" in m.lower()]
    assert key_problems == []
    assert len(pipe.unet.peft_config) == 1 and len(pipe.text_encoder.peft_config) == 1
    with_file = render(pipe)

    # the same weights as the trained peft model (from the run's checkpoint), in fp32
    ref = sd_pipeline(tiny_sd1)
    states = load_adapters(checkpoint)
    ref.unet.add_adapter(lora_config(cfg.network, unet_targets("transformer")))
    set_peft_model_state_dict(ref.unet, states["lora_unet"])
    ref.text_encoder.add_adapter(lora_config(cfg.network, TEXT_ENCODER))
    set_peft_model_state_dict(ref.text_encoder, states["lora_te"])
    with_peft = render(ref)

    change = (with_file - base).abs().max().item()
    mismatch = (with_file - with_peft).abs().max().item()
    assert change > 1e-3, "the LoRA did not change the image"
    assert mismatch < 0.02 * change + 2e-3, (mismatch, change)


def test_every_key_names_a_real_module_and_metadata_is_true(trained, tiny_sd1):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    cfg, lora_path, _ = trained
    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    te = CLIPTextModel.from_pretrained(tiny_sd1, subfolder="text_encoder")
    # kohya TE names always carry `text_model_` (the module path before transformers 5 flattened CLIPTextModel)
    te_paths = {n if n.startswith("text_model.") else f"text_model.{n}" for n, _ in te.named_modules()}
    modules = {"lora_unet": {n.replace(".", "_") for n, _ in unet.named_modules()},
               "lora_te": {n.replace(".", "_") for n in te_paths}}
    with safe_open(str(lora_path), "pt") as fh:
        keys = list(fh.keys())
        meta = fh.metadata()
        dtypes = {fh.get_tensor(k).dtype for k in keys}
        alphas = {float(fh.get_tensor(k)) for k in keys if k.endswith(".alpha")}
        down = fh.get_tensor(next(k for k in keys if k.endswith("lora_down.weight")))
    assert dtypes == {torch.float16}
    names = {k.split(".", 1)[0] for k in keys}
    suffixes = {k.split(".", 1)[1] for k in keys}
    assert suffixes == {"lora_down.weight", "lora_up.weight", "alpha"}
    for name in names:
        prefix = "lora_unet" if name.startswith("lora_unet_") else "lora_te"
        assert name.startswith(prefix + "_")
        assert name[len(prefix) + 1:] in modules[prefix], name
    assert sum(n.startswith("lora_unet_") for n in names) == 192  # sd-scripts' module count for SD 1.x
    assert sum(n.startswith("lora_te_text_model_encoder_layers_") for n in names) == 2 * 6  # 2 layers × 6 suffixes
    assert alphas == {ALPHA} and down.shape[0] == RANK

    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == str(RANK) and float(meta["ss_network_alpha"]) == ALPHA
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_sd_model_name"] == tiny_sd1.name
    assert meta["ss_resolution"] == "(64, 64)"
    assert meta["ss_num_train_images"] == "6"
    assert meta["ss_steps"] == "4" and meta["ss_epoch"] == "2"  # 6 images, batch 2 → 3 steps an epoch
    assert float(meta["ss_learning_rate"]) == 5e-3
    freq = json.loads(meta["ss_tag_frequency"])
    assert freq == {"images": {"photo": 6, "red": 6, **{f"thing {i}": 1 for i in range(6)}}}
    assert meta["ss_output_name"] == "test-lora"
    assert float(meta["ss_training_started_at"]) <= float(meta["ss_training_finished_at"])
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.title"] == "test-lora" and meta["modelspec.resolution"] == "64x64"
    assert meta["modelspec.date"].startswith("20")
    from studio.formats.kohya import tensor_bytes_hash

    assert meta["sshs_model_hash"] == tensor_bytes_hash(lora_path.read_bytes())


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_same_seed_gives_bit_identical_weights(tiny_sd1, image_folder, tmp_path):
    files = []
    for run in ("a", "b"):
        cfg = tiny_config(tiny_sd1, image_folder, tmp_path / run, schedule={"max_steps": 3, "batch_size": 2},
                          output={"dtype": "fp32", "directory": str(tmp_path / run), "name": "same"})
        events = list(run_training(cfg))
        assert isinstance(events[-1], Finished), events[-1]
        files.append(Path(events[-1].outputs[-1]))
    with safe_open(str(files[0]), "pt") as a, safe_open(str(files[1]), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
        changed = [k for k in a.keys() if k.endswith("lora_up.weight") and a.get_tensor(k).abs().sum() > 0]
        assert changed, "training did not move the weights"


def test_export_writes_its_compatibility_report_beside_the_file(trained):
    """Issue 16 D: every training export carries `<name>.compat.json`; a plain LoRA (+TE) loads as trained everywhere."""
    from studio.formats.compat_report import read_sidecar, sidecar_path

    _, lora_path, _ = trained
    side = sidecar_path(lora_path)
    assert side.exists() and side.name == lora_path.stem + ".compat.json"
    data = json.loads(side.read_text(encoding="utf-8"))
    assert data["file"] == lora_path.name
    assert {d["loader"]: d["status"] for d in data["loaders"]} == {
        "a1111": "ok", "forge": "ok", "comfyui": "ok", "diffusers": "ok", "sd-scripts": "ok"}
    with safe_open(str(lora_path), "pt") as f:
        keys = len(list(f.keys()))
    assert all(v.total_keys == keys for v in read_sidecar(lora_path).verdicts)
    assert data["plain_copy_advised"] is False
