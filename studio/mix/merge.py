"""Merging several weighted LoRAs into one LoRA's worth of modules, exact where it can be, reporting the loss.

- **concat**: Σ sᵢ·(αᵢ/rᵢ)·Bᵢ·Aᵢ is itself a LoRA of rank Σ rᵢ, up [s₁·α₁/r₁·B₁ | s₂·…], down [A₁; A₂; …],
  alpha = that rank: no approximation, no cross terms, unlike the √ratio merge in kohya's and supermerger's
  same-rank mode. Modules it cannot concatenate (LoHa, LoKr, Tucker, DoRA) are re-factorised by SVD at the
  rank their ΔW needs.
- **svd**: the summed ΔW truncated to rank R (Eckart–Young: the best rank-R approximation in the Frobenius
  norm). When every contribution is a plain LoRA, ΔW = U·D of rank ≤ Σ rᵢ, so the SVD is done on a small
  core from QR factorisations of U and Dᵀ: exact, and far cheaper than an SVD of the full out × in matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from studio.errors import LoraFormatError
from studio.formats.lora_file import LoraFile, LoraModule
from studio.mix.delta import flat, guess_shape, module_delta

Contribs = Mapping[str, Sequence[tuple[LoraModule, float]]]
BaseWeight = Callable[[str], torch.Tensor]


@dataclass(frozen=True)
class ModuleReport:
    name: str
    method: str  # concat | svd
    rank: int
    rel_error: float  # ‖ΔW − merged‖ / ‖ΔW‖
    norm: float  # ‖ΔW‖, to weigh the overall figure


@dataclass
class MergeResult:
    lora: LoraFile
    method: str  # "concat" or "svd:<rank>"
    reports: list[ModuleReport] = field(default_factory=list)

    @property
    def overall_error(self) -> float:
        """‖ΔW_all − merged_all‖ / ‖ΔW_all‖ over every module together."""
        total = sum(r.norm ** 2 for r in self.reports)
        lost = sum((r.rel_error * r.norm) ** 2 for r in self.reports)
        return math.sqrt(lost / total) if total > 0 else 0.0

    @property
    def max_error(self) -> float:
        return max((r.rel_error for r in self.reports), default=0.0)


def _concatenable(parts: Sequence[tuple[LoraModule, float]]) -> bool:
    if not all(m.algo == "lora" and m.mid is None and m.dora_scale is None for m, _ in parts):
        return False
    shapes = {(tuple(m.up.shape[:1]), tuple(m.down.shape[1:])) for m, _ in parts}  # type: ignore[union-attr]
    return len(shapes) == 1


def _stacked(parts: Sequence[tuple[LoraModule, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) of the one LoRA whose ΔW is Σ s·ΔW of `_concatenable` parts."""
    up = torch.cat([m.up.float() * (s * m.scale) for m, s in parts], dim=1)  # type: ignore[union-attr]
    return up, torch.cat([m.down.float() for m, _ in parts], dim=0)  # type: ignore[union-attr]


def _concat(name: str, parts: Sequence[tuple[LoraModule, float]]) -> tuple[LoraModule, ModuleReport]:
    up, down = _stacked(parts)
    rank = down.shape[0]
    fu, fd = flat(up), flat(down)
    norm = math.sqrt(max(float(((fu.T @ fu) * (fd @ fd.T)).sum()), 0.0))  # ‖U D‖ without forming U D
    return (LoraModule(name=name, down=down, up=up, alpha=float(rank)),
            ModuleReport(name, "concat", rank, 0.0, norm))


def _svd_of_product(u: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of u @ d (out × k)(k × in) through QR of both factors: cost O((out + in)·k²), not O(out·in·min)."""
    qu, ru = torch.linalg.qr(u)  # u = qu ru
    qd, rd = torch.linalg.qr(d.T)  # dᵀ = qd rd  →  d = rdᵀ qdᵀ
    uc, s, vhc = torch.linalg.svd(ru @ rd.T)
    return qu @ uc, s, vhc @ qd.T


def _truncate(name: str, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, rank: int,
              shape: tuple[int, ...]) -> tuple[LoraModule | None, ModuleReport]:
    total = float(s.pow(2).sum())
    if total == 0.0:
        return None, ModuleReport(name, "svd", 0, 0.0, 0.0)
    r = max(1, min(rank, int(s.numel())))
    rel = math.sqrt(float(s[r:].pow(2).sum()) / total)
    root = s[:r].sqrt()  # split σ evenly between the factors: keeps both in fp16 range
    up = u[:, :r] * root
    down = root[:, None] * vh[:r]
    if len(shape) == 4:
        up = up.reshape(shape[0], r, 1, 1)
        down = down.reshape(r, shape[1], shape[2], shape[3])
    return (LoraModule(name=name, down=down.contiguous(), up=up.contiguous(), alpha=float(r)),
            ModuleReport(name, "svd", r, rel, math.sqrt(total)))


def _summed_delta(name: str, parts: Sequence[tuple[LoraModule, float]], family: str,
                  base_weight: BaseWeight | None) -> torch.Tensor:
    weight = None
    if any(m.dora_scale is not None for m, _ in parts):
        if base_weight is None:
            raise LoraFormatError(f"`{name}` is a DoRA module: its change depends on the base model's weights",
                                  hint="give the base model (--base) to merge DoRA LoRAs, or bake into a checkpoint")
        weight = base_weight(name)
    total: torch.Tensor | None = None
    for module, strength in parts:
        delta = module_delta(module, strength, weight=weight)  # shaped like `weight` when there is one
        if total is not None and delta.shape != total.shape:
            if delta.numel() != total.numel():
                raise LoraFormatError(f"`{name}`: the LoRAs disagree about this layer's shape "
                                      f"({tuple(total.shape)} vs {tuple(delta.shape)}); they are for different models")
            if delta.dim() > total.dim():  # keep the 4-D (conv) form when one LoRA knows it
                total = total.reshape(delta.shape)
            else:
                delta = delta.reshape(total.shape)
        total = delta if total is None else total + delta
    assert total is not None
    return total if weight is not None else total.reshape(guess_shape(name, total, family))


def _rank_bound(parts: Sequence[tuple[LoraModule, float]], shape: tuple[int, ...]) -> int:
    """The rank ΔW can have at most: Σ r for LoRA, Σ r² for LoHa (Hadamard product), full for LoKr/DoRA."""
    full = min(shape[0], math.prod(shape[1:]))
    bound = 0
    for m, _ in parts:
        if m.dora_scale is not None or m.algo in ("lokr", "full"):
            return full
        bound += m.rank ** 2 if m.algo == "loha" else m.rank
    return min(full, max(bound, 1))


def merge(contribs: Contribs, family: str, *, rank: int | None = None, base_weight: BaseWeight | None = None,
          metadata: Mapping[str, str] | None = None) -> MergeResult:
    """`rank` None: concatenate ranks (exact); an int: SVD of each module's summed ΔW to that rank."""
    if rank is not None and rank < 1:
        raise LoraFormatError(f"rank must be at least 1 (got {rank})")
    out = LoraFile(family=family, metadata=dict(metadata or {}))
    result = MergeResult(lora=out, method="concat" if rank is None else f"svd:{rank}")
    for name, parts in sorted(contribs.items()):
        if not parts:
            continue
        module: LoraModule | None
        if rank is None and _concatenable(parts):
            module, report = _concat(name, parts)
        else:
            if _concatenable(parts):  # ΔW = U·D of rank ≤ Σ r
                up, down = _stacked(parts)
                shape = (up.shape[0],) + tuple(down.shape[1:])
                svd = _svd_of_product(flat(up), flat(down))
            else:
                delta = _summed_delta(name, parts, family, base_weight)
                shape = tuple(delta.shape)
                svd = torch.linalg.svd(flat(delta), full_matrices=False)
            target = rank if rank is not None else _rank_bound(parts, shape)
            module, report = _truncate(name, *svd, target, shape)
        result.reports.append(report)
        if module is not None:
            out.modules[name] = module
    if not out.modules:
        raise LoraFormatError("nothing to merge: every LoRA is disabled or at strength 0")
    return result
