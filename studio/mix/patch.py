"""Applying a mix to a loaded model in place: W = W₀ + Σ sᵢ·ΔWᵢ, accumulated in fp32, and undoing it.

Why not diffusers' `set_adapters`: a patched model runs at the base model's speed, works for every algorithm
we read (diffusers rejects LoHa, LoKr and Tucker cores), and is the baker's arithmetic, so a preview is what
the baked checkpoint gives. A slider move is cheap: original weights are kept once, each module's factors
stay on the device (ΔW is recomputed from them, not cached at full size), and only layers whose (module,
strength) list changed are rewritten. Every ΔW here is linear in strength (DoRA too, as ComfyUI applies it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from studio.formats.lora_file import LoraModule
from studio.mix.delta import flat, module_delta
from studio.mix.targets import Target


@dataclass
class _Cached:
    module: LoraModule  # kept so its id() cannot be reused while cached
    up: torch.Tensor | None = None  # (out × r) with alpha/rank folded in: ΔW = up @ down
    down: torch.Tensor | None = None
    full: torch.Tensor | None = None  # ΔW at strength 1 when it is not a plain low-rank product


@dataclass
class WeightPatcher:
    """Owns the in-place changes to the layers in `targets`; `restore()` puts every original weight back."""

    targets: Mapping[str, Target]
    _originals: dict[str, torch.Tensor] = field(default_factory=dict)
    _applied: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    _cache: dict[int, _Cached] = field(default_factory=dict)

    def _factors(self, name: str, module: LoraModule, weight: torch.Tensor) -> _Cached:
        cached = self._cache.get(id(module))
        if cached is not None and cached.module is module:
            return cached
        dev = weight.device
        cached = _Cached(module=module)
        if module.algo == "lora" and module.mid is None and module.dora_scale is None:
            assert module.up is not None and module.down is not None
            cached.up = flat(module.up.float()).to(dev) * module.scale
            cached.down = flat(module.down.float()).to(dev)
        else:
            base = self._originals.get(name, weight)
            cached.full = module_delta(module, 1.0, weight=base.to(dev).float()).to(dev)
        self._cache[id(module)] = cached
        return cached

    @torch.no_grad()
    def apply(self, contribs: Mapping[str, Sequence[tuple[LoraModule, float]]]) -> int:
        """Make every target layer W₀ + Σ s·ΔW for `contribs` (others back to W₀); returns layers rewritten."""
        changed = 0
        for name in set(contribs) | set(self._applied):
            parts = [(m, s) for m, s in contribs.get(name, ()) if s != 0.0]
            signature = tuple((id(m), float(s)) for m, s in parts)
            if self._applied.get(name, ()) == signature:
                continue
            weight = self.targets[name].module.weight
            if name not in self._originals:
                self._originals[name] = weight.detach().clone()
            original = self._originals[name]
            if not parts:
                weight.copy_(original)
                self._applied.pop(name, None)
                changed += 1
                continue
            total = original.float()
            low_up, low_down = [], []
            for module, strength in parts:
                c = self._factors(name, module, weight)
                if c.full is not None:
                    total = total + strength * c.full.reshape(weight.shape)
                else:
                    low_up.append(c.up * strength)  # type: ignore[operator]
                    low_down.append(c.down)
            if low_up:
                total = total + (torch.cat(low_up, dim=1) @ torch.cat(low_down, dim=0)).reshape(weight.shape)
            weight.copy_(total.to(weight.dtype))
            self._applied[name] = signature
            changed += 1
        return changed

    @torch.no_grad()
    def restore(self) -> None:
        for name, original in self._originals.items():
            self.targets[name].module.weight.copy_(original)
        self._applied.clear()
