"""Every key we export resolves under the rules A1111 and ComfyUI apply, not only under diffusers'.

The rules are restated here from those loaders' sources (AUTOMATIC1111 `extensions-builtin/Lora/networks.py`,
ComfyUI `comfy/lora.py`): both resolve names against the model in its original (CompVis/SGM) layout, which
we build from the tiny model with `studio.models.original_layout` (itself checked against diffusers'
single-file loader in tests/test_models_single_file.py).
"""

from __future__ import annotations

import re

import pytest
import torch

from studio.formats.kohya import lora_file_from_peft, to_tensors
from studio.formats.names import te_prefixes
from studio.models.original_layout import original_state_dict
from studio.models.tiny import build_tiny_pipeline
from studio.train.setup import lora_config
from studio.config import NetworkConfig
from studio.train.targets import TEXT_ENCODER, unet_targets

CLIP_SUFFIXES = ("mlp_fc1", "mlp_fc2", "self_attn_k_proj", "self_attn_q_proj", "self_attn_v_proj",
                 "self_attn_out_proj")


def _export(family: str, targets: str = "transformer") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A kohya file's tensors for a tiny model of `family` (UNet + all text encoders), and the model's
    original-layout state dict."""
    from peft.utils import get_peft_model_state_dict

    pipe = build_tiny_pipeline(family)
    net = NetworkConfig(rank=2, alpha=1.0, targets=targets, train_text_encoder=True)
    pipe.unet.add_adapter(lora_config(net, unet_targets(targets)))
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    states = {"lora_unet": get_peft_model_state_dict(pipe.unet)}
    for prefix, te in zip(te_prefixes(family), encoders):
        te.add_adapter(lora_config(net, TEXT_ENCODER))
        states[prefix] = get_peft_model_state_dict(te)
    tensors = to_tensors(lora_file_from_peft(states, 1.0, family), torch.float16)
    for te in encoders:  # the original layout is of the base model
        te.disable_adapters()
    pipe.unet.disable_adapters()
    base_unet = pipe.unet.__class__.from_config(pipe.unet.config)
    original = original_state_dict(family, base_unet, pipe.vae, [te.__class__(te.config) for te in encoders])
    return tensors, original


def _original_modules(original: dict[str, torch.Tensor]) -> set[str]:
    """Module names of the original layout with dots as underscores (what both WebUIs index by)."""
    return {k[: -len(".weight")].replace(".", "_") for k in original if k.endswith(".weight")}


def _a1111_sd1_unet(name: str) -> str:
    """A1111's diffusers→CompVis rename for SD 1.x attention modules."""
    for pattern, fmt in (
        (r"lora_unet_down_blocks_(\d+)_attentions_(\d+)_(.+)", lambda i, j, r: f"input_blocks_{1 + 3 * i + j}_1_{r}"),
        (r"lora_unet_mid_block_attentions_(\d+)_(.+)", lambda j, r: f"middle_block_1_{r}"),
        (r"lora_unet_up_blocks_(\d+)_attentions_(\d+)_(.+)", lambda i, j, r: f"output_blocks_{3 * i + j}_1_{r}"),
    ):
        m = re.fullmatch(pattern, name)
        if m:
            groups = [int(g) if g.isdigit() else g for g in m.groups()]
            return "diffusion_model_" + fmt(*groups)
    return name


def _comfy_clip_keys(original: dict[str, torch.Tensor], family: str) -> set[str]:
    """ComfyUI's `model_lora_keys_clip` names for the text encoders in the checkpoint."""
    layers = {int(m.group(1)) for k in original for m in [re.search(r"encoder\.layers\.(\d+)\.", k)] if m}
    layers |= {int(m.group(1)) for k in original for m in [re.search(r"resblocks\.(\d+)\.", k)] if m}
    prefixes = ("lora_te1", "lora_te2") if family == "sdxl" else ("lora_te",)
    return {f"{p}_text_model_encoder_layers_{b}_{s}" for p in prefixes for b in layers for s in CLIP_SUFFIXES}


@pytest.mark.parametrize("targets", ["transformer", "attention"])
def test_sd1_keys_resolve_in_a1111_and_comfyui(targets):
    tensors, original = _export("sd1", targets)
    modules = _original_modules(original)
    names = {k.split(".", 1)[0] for k in tensors}
    comfy_clip = _comfy_clip_keys(original, "sd1")
    for name in names:
        if name.startswith("lora_unet_"):
            compvis = _a1111_sd1_unet(name)  # A1111 indexes `sd_model.model`, whose module names start here
            assert "model_" + compvis in modules, f"A1111 would not find {name} ({compvis})"
        else:
            assert name in comfy_clip, f"ComfyUI would not load {name}"
            # A1111 SD1: lora_te_text_model_encoder_layers_N_x → cond_stage_model.transformer.text_model…
            m = re.fullmatch(r"lora_te_text_model_encoder_layers_(\d+)_(.+)", name)
            assert m, name
            assert f"cond_stage_model_transformer_text_model_encoder_layers_{m.group(1)}_{m.group(2)}" in modules
    assert sum(n.startswith("lora_unet_") for n in names) == (192 if targets == "transformer" else 128)


def test_sdxl_keys_resolve_in_a1111_and_comfyui():
    tensors, original = _export("sdxl")
    modules = _original_modules(original)
    names = {k.split(".", 1)[0] for k in tensors}
    comfy_clip = _comfy_clip_keys(original, "sdxl")
    unet = {n for n in names if n.startswith("lora_unet_")}
    assert unet
    for name in unet:  # both match `lora_unet_` + the SGM module path directly
        assert "model_diffusion_model_" + name.removeprefix("lora_unet_") in modules, name
    te = names - unet
    assert {n.split("_text_model")[0] for n in te} == {"lora_te1", "lora_te2"}
    for name in te:
        assert name in comfy_clip, f"ComfyUI would not load {name}"
    # A1111 fuses OpenCLIP-G attention: its LoRA applies only when q, k, v and out are all present
    for layer in {int(re.search(r"layers_(\d+)_", n).group(1)) for n in te if n.startswith("lora_te2")}:
        for part in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert f"lora_te2_text_model_encoder_layers_{layer}_self_attn_{part}" in te
