"""Real-size SD 1.5 / SD 2.x / SDXL models built from the bundled configs with weights on the meta device:
their key names and shapes are the real ones, and they cost no memory. Cached per test session."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def build_empty(family: str) -> dict[str, torch.nn.Module]:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from studio.models.configs import shipped_config

    root = shipped_config(family)
    with init_empty_weights():
        parts = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root, subfolder="unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(root, subfolder="vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(root, subfolder="text_encoder")),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(root, subfolder="text_encoder_2"))
    return parts


@functools.lru_cache(maxsize=None)
def original_shapes(family: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of a real-size checkpoint of `family` in the original (CompVis/SGM) layout."""
    from studio.models.original_layout import original_state_dict

    parts = build_empty(family)
    encoders = [parts["text_encoder"]] + ([parts["text_encoder_2"]] if family == "sdxl" else [])
    state = original_state_dict(family, parts["unet"], parts["vae"], encoders)
    return {k: tuple(v.shape) for k, v in state.items()}
