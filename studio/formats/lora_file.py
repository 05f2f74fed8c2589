"""One in-memory representation of a LoRA, whatever layout it was read from or will be written to.

Modules are keyed by their kohya name, the name every WebUI matches on, and each computes its own ΔW, so
the mixer, the baker and the inspector never need to know which algorithm made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

Algo = Literal["lora", "loha", "lokr", "full"]
_RANK_PARAMS = {"loha": ("hada_w1_b",), "lokr": ("lokr_w2_b", "lokr_w1_b")}


@dataclass
class LoraModule:
    """One adapted layer. For `lora`: ΔW = up @ down × alpha / rank (conv: over flattened kernels)."""

    name: str
    algo: Algo = "lora"
    down: torch.Tensor | None = None  # r × in (× kh × kw)
    up: torch.Tensor | None = None  # out × r (× 1 × 1)
    mid: torch.Tensor | None = None  # Tucker core r × r × kh × kw (LoCon with conv rank)
    alpha: float | None = None  # None: scale 1 (alpha = rank)
    params: dict[str, torch.Tensor] = field(default_factory=dict)  # LoHa / LoKr / full factors
    dora_scale: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        if self.algo == "lora":
            return int(self.down.shape[0]) if self.down is not None else 0
        keys = _RANK_PARAMS.get(self.algo, ())  # LoHa: hada_w1_b; LoKr: its low-rank factor, 0 when full
        return next((int(self.params[k].shape[0]) for k in keys if k in self.params), 0)

    @property
    def scale(self) -> float:
        """alpha / rank, with kohya's rule that a missing alpha means a scale of 1."""
        r = self.rank
        return 1.0 if self.alpha is None or r == 0 else float(self.alpha) / r

    def delta_weight(self, out_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """ΔW in fp32, shaped like the base weight (`out_shape` when known; needed for LoKr and convs)."""
        p = {k: v.float() for k, v in self.params.items()}  # LoHa / LoKr factors
        if self.algo == "lora":
            assert self.down is not None and self.up is not None
            down, up = self.down.float(), self.up.float()
            if self.mid is not None:
                # Tucker: ΔW[o, i, h, w] = Σ up[o, a] mid[a, b, h, w] down[b, i]
                delta = torch.einsum("oa,abhw,bi->oihw", up.flatten(1), self.mid.float(), down.flatten(1))
            elif down.dim() == 4:
                delta = (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:])
            else:
                delta = up @ down
            delta = delta * self.scale
        elif self.algo == "loha":
            if "hada_t1" in p:
                w1 = torch.einsum("ijkl,jr,ip->prkl", p["hada_t1"], p["hada_w1_b"], p["hada_w1_a"])
                w2 = torch.einsum("ijkl,jr,ip->prkl", p["hada_t2"], p["hada_w2_b"], p["hada_w2_a"])
            else:
                w1 = p["hada_w1_a"] @ p["hada_w1_b"]
                w2 = p["hada_w2_a"] @ p["hada_w2_b"]
            delta = w1 * w2 * self.scale
        elif self.algo == "lokr":
            w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
            if "lokr_w2" in p:
                w2 = p["lokr_w2"]
            elif "lokr_t2" in p:
                w2 = torch.einsum("ijkl,jr,ip->prkl", p["lokr_t2"], p["lokr_w2_b"], p["lokr_w2_a"])
            else:
                w2 = p["lokr_w2_a"] @ p["lokr_w2_b"]
            if w2.dim() == 4 and w1.dim() == 2:
                w1 = w1[:, :, None, None]
            delta = torch.kron(w1, w2)
            # LyCORIS scales LoKr by alpha / rank only when w2 (or w1) is factorised
            if "lokr_w1_b" in p or "lokr_w2_b" in p:
                delta = delta * self.scale
        else:  # full
            delta = self.params["diff"].float()
        if out_shape is not None and tuple(delta.shape) != tuple(out_shape):
            if delta.numel() != math.prod(out_shape):
                raise ValueError(f"{self.name}: ΔW has shape {tuple(delta.shape)}, the model's weight "
                                 f"{tuple(out_shape)}")
            delta = delta.reshape(out_shape)
        return delta

    def tensors(self) -> list[torch.Tensor]:
        found = [t for t in (self.down, self.up, self.mid, self.dora_scale) if t is not None]
        return found + list(self.params.values())


@dataclass
class LoraFile:
    modules: dict[str, LoraModule] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    family: str = "unknown"  # sd1 | sd2 | sd2-v | sdxl | unknown

    def ranks(self) -> list[int]:
        return sorted({m.rank for m in self.modules.values()})

    def alphas(self) -> list[float]:
        return sorted({float(m.alpha) for m in self.modules.values() if m.alpha is not None})
