"""The first stages of a run, in the diffusers recipe's order: choose the precision, then place the models."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from studio.errors import ConfigError


@dataclass(frozen=True)
class Precision:
    mixed: str  # "no" | "fp16" | "bf16" (what accelerate is told)
    weights: torch.dtype  # dtype of the frozen base weights


def choose_precision(requested: str, device: torch.device) -> Precision:
    """fp32 on CPU (CPU autocast is slower than fp32 for these models); bf16 where the GPU has it."""
    if device.type != "cuda" or requested == "no":
        return Precision("no", torch.float32)
    if requested == "auto":
        requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return Precision(requested, torch.bfloat16 if requested == "bf16" else torch.float16)


def place_models(components, precision: Precision, device: torch.device, *, base_quantization: str = "none") -> None:
    components.vae.requires_grad_(False)
    # the SDXL VAE overflows in fp16; encoding happens once, so fp32 costs nothing per step
    components.vae.to(device, dtype=torch.float32 if components.is_sdxl else precision.weights)
    if base_quantization != "none":
        if device.type != "cuda":
            raise ConfigError("the low-VRAM mode (base_quantization) needs an NVIDIA GPU: bitsandbytes' 8-bit and "
                              "NF4 layers save GPU memory, and on the CPU they would only be slower",
                              hint="set [network] base_quantization = \"none\" to train on this machine")
        from studio.train.quantize import quantize_linear_layers

        compute = precision.weights if precision.weights != torch.float32 else torch.float16
        quantize_linear_layers(components.unet, base_quantization, compute_dtype=compute, device=device)
        # the rest (convolutions, norms) in the base dtype; the quantised layers keep theirs
        for module in components.unet.modules():
            if "bitsandbytes" not in type(module).__module__:
                for p in module.parameters(recurse=False):
                    p.data = p.data.to(device, precision.weights)
    else:
        components.unet.to(device, dtype=precision.weights)
    for te in components.text_encoders:
        te.to(device, dtype=precision.weights)
