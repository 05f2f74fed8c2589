"""Which layer of a loaded base model each kohya module name adapts, and whether a LoRA fits that model.

The map is built from the model itself, so a LoRA module that matches no layer, or whose ΔW has another
shape than the layer's weight, is found before anything is baked or previewed, and reported by name,
instead of being skipped the way WebUIs skip keys they cannot load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from studio.errors import LoraFormatError
from studio.formats.family import family_label, same_architecture
from studio.formats.lora_file import LoraFile, LoraModule
from studio.formats.names import kohya_name_for
from studio.formats.reader import some


@dataclass(frozen=True)
class Target:
    component: str  # unet | te | te1 | te2
    path: str  # module path inside its component
    module: torch.nn.Module  # the nn.Linear / nn.Conv2d whose weight a LoRA changes


def model_targets(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module], family: str) -> dict[str, Target]:
    out: dict[str, Target] = {}
    parts = [("unet", unet)] + list(zip(("te1", "te2") if family == "sdxl" else ("te",), text_encoders))
    for component, root in parts:
        for path, module in root.named_modules():
            if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) or not path:
                continue
            try:
                name = kohya_name_for(component, path, family)
            except (KeyError, ValueError, LoraFormatError):  # a layer with no SGM name: no LoRA can address it
                continue
            out[name] = Target(component, path, module)
    return out


def shape_problem(module: LoraModule, weight: torch.Tensor) -> str:
    """"" when the module's ΔW fits `weight`, else a short description of the mismatch."""
    w = tuple(weight.shape)
    if module.algo == "lora" and module.down is not None and module.up is not None:  # shape from the factors
        kernel = tuple(module.mid.shape[2:]) if module.mid is not None else tuple(module.down.shape[2:])
        shape = (module.up.shape[0], module.down.shape[1], *kernel)
    else:  # LoHa/LoKr: it takes computing
        try:
            shape = tuple(module.delta_weight().shape)
        except (RuntimeError, KeyError, ValueError):
            return "its factors do not fit together"
    # linear vs 1×1 conv, or LoHa/LoKr factors flattened over the kernel: same numbers, same rows
    if shape == w or (math.prod(shape) == math.prod(w) and shape[0] == w[0]):
        return ""
    return f"LoRA ΔW {'×'.join(map(str, shape))}, model weight {'×'.join(map(str, w))}"


def check_fits(lora: LoraFile, label: str, targets: dict[str, Target], model_family: str) -> None:
    """LoraFormatError saying which modules of `label` do not fit the model, and why."""
    if lora.family != "unknown" and not same_architecture(lora.family, model_family):
        raise LoraFormatError(f"{label} is a LoRA for {family_label(lora.family)}, but the base model is "
                              f"{family_label(model_family)}",
                              hint="choose a LoRA made for this base model, or another base model")
    missing = [n for n in lora.modules if n not in targets]
    wrong = [f"`{name}` ({problem})" for name, module in lora.modules.items()
             if name in targets and (problem := shape_problem(module, targets[name].module.weight))]
    if not missing and not wrong:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} module(s) match no layer of the base model: {some(missing)}")
    if wrong:
        parts.append(f"{len(wrong)} module(s) have another shape than the model's layer: "
                     f"{some(wrong, 3, sep='; ', quote='')}")
    raise LoraFormatError(f"{label} does not fit the base model ({family_label(model_family)}): " + "; ".join(parts),
                          hint="it was made for a different model (size or architecture)")
