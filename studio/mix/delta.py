"""ΔW of one module at one strength, in fp32, shaped like the base weight: the one formula mixing, merging,
baking and previewing share, so the four cannot drift apart.

DoRA is not a pure ΔW: it rescales the columns (LyCORIS, `dora_scale` 1 × in) or rows (out × 1) of W + ΔW
to the learnt magnitudes, so its change depends on the base weight. ComfyUI applies it as
W + strength × (W_dora − W), and so do we, with ComfyUI's norms (docs/TRAINING.md, "DoRA in the loaders").
"""

from __future__ import annotations

import math
import re

import torch

from studio.formats.lora_file import LoraModule

_CONV3 = re.compile(r"(conv1|conv2|_conv|conv_in|conv_out|in_layers_2|out_layers_3|_op|input_blocks_0_0|out_2)$")
_CONV1 = re.compile(r"(conv_shortcut|skip_connection)$")
_PROJ = re.compile(r"(proj_in|proj_out)$")


def module_delta(module: LoraModule, strength: float = 1.0, *,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """strength × ΔW in fp32; `weight` (the base weight) is needed for DoRA and fixes the shape."""
    delta = module.delta_weight(None if weight is None else tuple(weight.shape))
    if module.dora_scale is None:
        return delta * strength if strength != 1.0 else delta
    if weight is None:
        raise ValueError(f"{module.name}: DoRA needs the base weight")
    w = weight.float()
    combined = w + delta
    scale = module.dora_scale.float().to(w.device)
    out_features = w.shape[0]
    if scale.shape[0] == out_features and scale.numel() == out_features:  # wd_on_output: per row
        # ComfyUI and Forge divide an output-axis scale by the BASE weight's row norms, not (W + ΔW)'s; our
        # exporter writes dora_scale for exactly that rule, so the mixer renders a file as they do.
        norm = w.flatten(1).norm(dim=1).reshape((out_features,) + (1,) * (w.dim() - 1))
    else:  # LyCORIS default: per input column (what ComfyUI and A1111 compute)
        norm = combined.transpose(0, 1).flatten(1).norm(dim=1).reshape((1, w.shape[1]) + (1,) * (w.dim() - 2))
    return strength * (combined * (scale.reshape(norm.shape) / norm) - w)


def guess_shape(name: str, delta: torch.Tensor, family: str) -> tuple[int, ...]:
    """The base weight's shape when no model is at hand (merged export): LoHa/LoKr give 2-D ΔW for convs.

    WebUIs build the conv layer from the factors' shape, so a 3×3 conv must get 4-D factors. Which layers
    are convs is known from their names (resnet convs and samplers 3×3, shortcuts 1×1, SD 1.x `proj_in/out` 1×1).
    """
    if delta.dim() == 4:
        return tuple(delta.shape)
    out_f, in_f = delta.shape
    if _CONV3.search(name) and in_f % 9 == 0:
        return (out_f, in_f // 9, 3, 3)
    if _CONV1.search(name) or (_PROJ.search(name) and family == "sd1" and name.startswith("lora_unet")):
        return (out_f, in_f, 1, 1)
    return (out_f, in_f)


def flat(delta: torch.Tensor) -> torch.Tensor:
    return delta.reshape(delta.shape[0], math.prod(delta.shape[1:]))
