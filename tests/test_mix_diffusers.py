"""Acceptance 2 of the mixer: a merged LoRA loads in diffusers with `load_lora_weights`, every key matched."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.formats.reader import read_lora
from studio.mix.export import export_merged
from studio.mix.recipe import MixEntry, load_sources
from studio.formats.names import kohya_name_for
from tests.diffusers_helpers import load_lora_collecting_messages
from tests.lora_maker import lora_metadata, random_lora, write_kohya

STRENGTHS = (0.8, -0.3)


def _load_with_all_messages(pipe, path: Path, adapter: str) -> list[str]:
    """Load `path` as users do and return every message (INFO and up) diffusers, peft and transformers gave."""
    return load_lora_collecting_messages(pipe, path, level=logging.INFO, adapter_name=adapter)


def _key_problems(messages: list[str]) -> list[str]:
    """Messages about LoRA keys that did not load (a transformers load report also lists the *base* weights
    missing from a LoRA file, which is how every LoRA looks; only lines naming LoRA parameters count)."""
    bad = []
    for message in messages:
        low = message.lower()
        if "not loaded" in low or "unexpected" in low or "could not" in low or "no lora keys" in low:
            bad.append(message)
        elif "missing" in low:
            bad.extend(line for line in message.splitlines() if "lora_" in line.lower() and "missing" in line.lower())
    return bad


def _assert_adapter_equals_file(pipe, family: str, path: Path, adapter: str) -> None:
    """Every module of the file is a peft layer of the pipeline holding exactly the file's factors and scale."""
    parts = [("unet", pipe.unet)] + ([("te1", pipe.text_encoder), ("te2", pipe.text_encoder_2)]
                                     if family == "sdxl" else [("te", pipe.text_encoder)])
    layers = {kohya_name_for(component, path_, family): mod for component, root in parts
              for path_, mod in root.named_modules() if hasattr(mod, "lora_A")}
    lora = read_lora(path)
    for name, m in lora.modules.items():
        assert name in layers, f"{name} was not loaded"
        layer = layers[name]
        assert adapter in layer.lora_A, f"{name} was not loaded"
        assert torch.equal(layer.lora_A[adapter].weight.float(), m.down.float()), name
        assert torch.equal(layer.lora_B[adapter].weight.float(), m.up.float()), name
        assert layer.scaling[adapter] == pytest.approx(m.alpha / m.rank), name


def _pipe(model: Path, family: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    kwargs = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(model, local_files_only=True, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("rank", [None, 3], ids=["concat", "svd3"])
def test_merged_lora_loads_in_diffusers_with_every_key(tiny_sd1, tmp_path, rank):
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd1")
    paths = [write_kohya(random_lora(pipe, "sd1", rank=r, alpha=a, seed=s, scale=0.3,
                                     metadata=lora_metadata("sd1", f"src{s}")), tmp_path / f"src{s}.safetensors")
             for s, r, a in ((1, 4, 2.0), (2, 8, 8.0))]
    sources = load_sources([MixEntry(str(p), s) for p, s in zip(paths, STRENGTHS)])
    merged = export_merged(sources, tmp_path / "merged.safetensors", rank=rank, dtype="fp32").path

    target = _pipe(tiny_sd1, "sd1")
    messages = _load_with_all_messages(target, merged, "merged")
    assert _key_problems(messages) == []
    _assert_adapter_equals_file(target, "sd1", merged, "merged")


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_merged_lora_renders_like_its_sources_in_diffusers(tiny_sd1, tmp_path):
    """The concatenated merge at strength 1 is the sources at their strengths: same image in diffusers."""
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd1")
    paths = [write_kohya(random_lora(pipe, "sd1", rank=4, alpha=2.0, seed=s, scale=0.3), tmp_path / f"s{s}.safetensors")
             for s in (5, 6)]
    merged = export_merged(load_sources([MixEntry(str(p), s) for p, s in zip(paths, STRENGTHS)]),
                           tmp_path / "merged.safetensors", dtype="fp32").path

    def render(files, weights):
        p = _pipe(tiny_sd1, "sd1")
        names = []
        for i, f in enumerate(files):
            p.load_lora_weights(str(f), adapter_name=f"a{i}")
            names.append(f"a{i}")
        p.set_adapters(names, adapter_weights=list(weights))
        out = p(prompt="photo, thing 1, red", num_inference_steps=3, height=64, width=64, guidance_scale=5.0,
                generator=torch.Generator().manual_seed(3), output_type="np")
        return out.images[0]

    sources_image = render(paths, STRENGTHS)
    merged_image = render([merged], [1.0])
    assert np.abs(sources_image - merged_image).max() < 2e-3


def test_merged_sdxl_lora_loads_in_diffusers(tiny_sdxl, tmp_path):
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sdxl")
    paths = [write_kohya(random_lora(pipe, "sdxl", rank=4, alpha=4.0, seed=s, metadata=lora_metadata("sdxl", f"x{s}")),
                         tmp_path / f"x{s}.safetensors") for s in (1, 2)]
    assert any(n.startswith("lora_unet_input_blocks_") for n in read_lora(paths[0]).modules)  # SGM names
    merged = export_merged(load_sources([MixEntry(str(p), s) for p, s in zip(paths, STRENGTHS)]),
                           tmp_path / "merged-xl.safetensors", dtype="fp32").path
    assert read_lora(merged).family == "sdxl"
    target = _pipe(tiny_sdxl, "sdxl")
    messages = _load_with_all_messages(target, merged, "merged")
    assert _key_problems(messages) == []
    _assert_adapter_equals_file(target, "sdxl", merged, "merged")
