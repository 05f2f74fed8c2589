"""An exponential moving average of the LoRA weights (diffusers' `EMAModel`, reduced to the adapter).

Late in a run the weights jitter around a good point; their running average sits closer to it, which shows
as cleaner samples. Only the adapter (a few MB) is averaged. The decay warms up as
min(decay, (1 + t) / (10 + t)) after t updates (diffusers' default), so the zero-initialised start fades.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def ema_decay_at(decay: float, updates: int) -> float:
    return min(decay, (1 + updates) / (10 + updates))


class LoraEMA:
    def __init__(self, params: list[torch.nn.Parameter], decay: float) -> None:
        self.params = params
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().float().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        d = ema_decay_at(self.decay, self.updates)
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in place of the trained ones for the block (export, preview, validation)."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s.to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"shadow.{i:05d}": s.cpu() for i, s in enumerate(self.shadow)}
        out["updates"] = torch.tensor(self.updates)
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        shadows = [state[f"shadow.{i:05d}"] for i in range(len(self.shadow))]
        for s, loaded in zip(self.shadow, shadows):
            if s.shape != loaded.shape:
                raise ValueError("the EMA state does not match the network")
            s.copy_(loaded)
        self.updates = int(state["updates"])
