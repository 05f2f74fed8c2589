"""How each consumer turns a kohya-layout DoRA module (`lora_down`, `lora_up`, `alpha`, `dora_scale`) into the
weight it runs with: our own small re-statements of their formulas, read from their source, for the tests.

All take the file's tensors for one module and the base weight W, and return the patched weight in fp32.
ΔW = up·down × alpha/rank (the plain LoRA update; conv factors flattened), Wc = W + ΔW.

- ComfyUI, `comfy/weight_adapter/base.py` `weight_decompose` (called from `weight_adapter/lora.py`
  `LoRAAdapter.calculate_weight`): a `dora_scale` whose first dimension equals W's output count is
  output-axis: W' = dora_scale · Wc / (‖W‖_row + eps) — the norm of the *base* weight; otherwise input-axis:
  W' = dora_scale · Wc / (‖Wc‖_col + eps). Strength s: W + s·(W' − W).
- Forge, `backend/patcher/lora.py` `weight_decompose`: the same formula (ported from ComfyUI, #2856).
- LyCORIS reference, `lycoris/modules/locon.py` `apply_weight_decompose` (wd_on_out=True; an option since
  Dec 2024, the default since April 2025) and open ComfyUI PR #15458: W' = dora_scale · Wc / (‖Wc‖_row + eps).
- A1111 1.10, `extensions-builtin/Lora/network.py` `NetworkModule.finalize_updown` → `apply_weight_decompose`:
  always input-axis, W' = dora_scale · Wc / ‖Wc‖_col whatever dora_scale's shape (an (out, 1) scale
  broadcasts against the (1, in) norm); multiplier s: W + s·(W' − W).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

EPS = torch.finfo(torch.float32).eps


def _parts(tensors: Mapping[str, torch.Tensor], name: str, weight: torch.Tensor):
    w = weight.detach().float()
    down = tensors[f"{name}.lora_down.weight"].float()
    up = tensors[f"{name}.lora_up.weight"].float()
    alpha = tensors[f"{name}.alpha"].item() / down.shape[0] if f"{name}.alpha" in tensors else 1.0
    combined = w + alpha * (up.flatten(1) @ down.flatten(1)).reshape(w.shape)
    return w, combined, tensors[f"{name}.dora_scale"].float()


def _row_norm(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1).reshape((t.shape[0],) + (1,) * (t.dim() - 1))


def _column_norm(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(0, 1).reshape(t.shape[1], -1).norm(dim=1).reshape((1, t.shape[1]) + (1,) * (t.dim() - 2))


def comfyui(tensors, name, weight, strength: float = 1.0) -> torch.Tensor:
    w, combined, scale = _parts(tensors, name, weight)
    norm = _row_norm(w) if scale.shape[0] == w.shape[0] else _column_norm(combined)
    patched = combined * (scale / (norm + EPS))
    return w + strength * (patched - w)


forge = comfyui  # backend/patcher/lora.py weight_decompose is ComfyUI's, line for line in effect


def lycoris_reference(tensors, name, weight) -> torch.Tensor:
    """At multiplier 1 (LyCORIS interpolates its scale, not the weight, at other multipliers)."""
    _, combined, scale = _parts(tensors, name, weight)
    return combined * (scale / (_row_norm(combined) + EPS))


def a1111(tensors, name, weight, strength: float = 1.0) -> torch.Tensor:
    w, combined, scale = _parts(tensors, name, weight)
    patched = combined * (scale / _column_norm(combined))
    return w + strength * (patched - w)
