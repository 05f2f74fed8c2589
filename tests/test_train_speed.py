"""Speed options: the disk latent cache and its invalidation, channels-last, torch.compile, SDPA, fused AdamW."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from studio.config import DatasetConfig, OptimizerConfig, save_project
from studio.dataset.scan import scan_folders
from studio.events import Finished, Log, Progress
from studio.train.data import prepare_dataset
from studio.train.engine import run_training
from studio.train.latent_cache import LatentCache, vae_fingerprint
from tests.conftest import make_images, tiny_config


def _vae(model: Path):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(model, subfolder="vae").eval()


def _prepare(data: Path, vae, cache: LatentCache, **dataset):
    cfg = DatasetConfig(folders=(str(data),), resolution=dataset.pop("resolution", 64), **dataset)
    return prepare_dataset(list(scan_folders([data]).images), cfg, vae, device=torch.device("cpu"),
                           dtype=torch.float32, seed=3, cache=cache, vae_hash=vae_fingerprint(vae))


def test_disk_cache_reuses_latents_until_image_size_flip_or_vae_change(tiny_sd1, tmp_path):
    data = make_images(tmp_path / "d", n=4)
    cache = LatentCache(tmp_path / "cache")
    vae = _vae(tiny_sd1)
    first = _prepare(data, vae, cache)
    assert (first.cache_hits, first.cache_misses) == (0, 4) and len(list(cache.folder.iterdir())) == 4
    again = _prepare(data, vae, cache)
    assert (again.cache_hits, again.cache_misses) == (4, 0)
    for a, b in zip(first.examples, again.examples):
        assert torch.equal(a.latents, b.latents)

    image = data / "img001.png"
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the image was edited
    edited = _prepare(data, vae, cache)
    assert (edited.cache_hits, edited.cache_misses) == (3, 1)
    assert (_prepare(data, vae, cache, resolution=128).cache_misses) == 4  # another size
    flipped = _prepare(data, vae, cache, flip=True)
    assert flipped.cache_misses == 4 and all(e.flipped is not None for e in flipped.examples)
    assert _prepare(data, vae, cache, flip=True).cache_hits == 4
    other_vae = _vae(tiny_sd1)
    with torch.no_grad():
        other_vae.encoder.conv_in.bias[0] += 1e-3  # a fine-tuned VAE: same shapes, other weights
    assert vae_fingerprint(other_vae) != vae_fingerprint(vae)
    assert _prepare(data, other_vae, cache).cache_misses == 4
    assert _prepare(data, vae, cache).cache_hits == 4  # the old entries are still good

    damaged = next(cache.folder.iterdir())
    damaged.write_bytes(b"not a safetensors file")
    assert _prepare(data, vae, cache).cache_misses <= 1  # a damaged entry is simply encoded again


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_second_run_of_a_project_reads_latents_from_its_cache(tiny_sd1, tmp_path):
    data = make_images(tmp_path / "data", n=4)
    cfg = tiny_config(tiny_sd1, data, tmp_path / "out", dataset={"latent_cache": "disk"},
                      schedule={"max_steps": 1})
    project = tmp_path / "project.toml"
    save_project(cfg, project)
    logs = []
    for _ in range(2):
        events = list(run_training(cfg, project_file=project))
        assert isinstance(events[-1], Finished), events[-1]
        logs.append(next(e.text for e in events if isinstance(e, Log) and "images" in e.text))
        first_loss = next(e.loss for e in events if isinstance(e, Progress))
    assert "latents: 0 from the disk cache, 4 encoded" in logs[0]
    assert "latents: 4 from the disk cache, 0 encoded" in logs[1]
    assert len(list((tmp_path / ".cache" / "latents").iterdir())) == 4
    assert first_loss > 0


def _run(model, data, out, **schedule):
    cfg = tiny_config(model, data, out, schedule={"max_steps": 2, **schedule},
                      output={"dtype": "fp32", "directory": str(out)})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    with safe_open(events[-1].outputs[-1], "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return [e.loss for e in events if isinstance(e, Progress)], tensors, events


@pytest.mark.slow
def test_channels_last_and_compile_train_the_same_lora(tiny_sd1, image_folder, tmp_path, monkeypatch):
    from studio.train import speed

    monkeypatch.setattr(speed, "COMPILE_BACKEND", "aot_eager")  # the same graph capture, no C++ build
    plain_losses, plain, _ = _run(tiny_sd1, image_folder, tmp_path / "plain", channels_last="off")
    cl_losses, cl, events = _run(tiny_sd1, image_folder, tmp_path / "cl", channels_last="on")
    assert any(isinstance(e, Log) and "channels-last" in e.text for e in events)
    co_losses, co, events = _run(tiny_sd1, image_folder, tmp_path / "co", channels_last="off", compile_unet=True)
    assert any(isinstance(e, Log) and "torch.compile (aot_eager)" in e.text for e in events)
    for losses, tensors in ((cl_losses, cl), (co_losses, co)):
        assert losses == pytest.approx(plain_losses, rel=1e-4)
        assert tensors.keys() == plain.keys()
        # the up matrices start at zero, so they are the learnt update; Adam turns float-rounding differences
        # in near-zero gradients into full-size steps, so compare the updates as a whole
        ups = [k for k in plain if k.endswith("lora_up.weight")]
        diff = torch.cat([(tensors[k] - plain[k]).flatten() for k in ups]).norm()
        assert diff < 0.05 * torch.cat([plain[k].flatten() for k in ups]).norm()


def test_speed_helpers_sdpa_channels_last_and_fused_adamw(tiny_sd1):
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    from studio.train.optimizers import make_optimizer
    from studio.train.speed import apply_speed_options, ensure_sdpa, use_channels_last

    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    assert ensure_sdpa(unet) == "AttnProcessor2_0"  # diffusers' default already is SDPA
    unet.set_attn_processor(AttnProcessor())
    assert ensure_sdpa(unet) == "AttnProcessor"
    assert {type(p) for p in unet.attn_processors.values()} == {AttnProcessor2_0}
    assert apply_speed_options(unet, channels_last=True, compile_unet=False) == ["channels-last"]
    conv = unet.down_blocks[0].resnets[0].conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert use_channels_last("auto", torch.device("cuda")) and not use_channels_last("auto", torch.device("cpu"))
    assert use_channels_last("on", torch.device("cpu")) and not use_channels_last("off", torch.device("cuda"))
    model = torch.nn.Linear(4, 4)
    fused = make_optimizer([model], OptimizerConfig(), fused=True)
    assert fused.defaults["fused"] is True
    assert make_optimizer([model], OptimizerConfig(), fused=False).defaults["foreach"] is True


@pytest.mark.slow
def test_gpu_bench_times_every_speed_variant_in_tiny_mode(tmp_path):
    import importlib.util
    import json
    import sys

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gpu_step_variants", root / "bench" / "gpu_step.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    # ours+compile is left out: it is `ours` with compile_unet=True, and tracing the tiny UNet costs ~45 s on
    # a CPU; test_channels_last_and_compile_train_the_same_lora runs that path.
    variants = "reference,reference+vae,ours,ours-channels_last"
    assert bench.main(["--tiny-cpu", "--models", "sd1", "--checkpointing", "off", "--steps", "1", "--warmup", "1",
                       "--variants", variants, "--compile-backend", "aot_eager", "--out", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "gpu_step_tiny.json").read_text())["results"]
    assert [r["impl"] for r in runs] == variants.split(",")
    assert all(r["status"] == "ok" and r["lora_updated"] and r["step_s"] > 0 for r in runs)
    assert len({r["trainable_params"] for r in runs}) == 1  # the same LoRA in every variant
    md = (tmp_path / "gpu_step_tiny.md").read_text()
    assert "faster than reference+vae" in md
