"""What the mixer's jobs send back over the worker pipe: `MixResult`, a worker protocol event type.

It carries the `request_id` of the request it answers, so a result can never be mistaken for another
panel's or an older one. The requests themselves are `studio.job_requests`.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.events import Event


@dataclass(frozen=True)
class MixResult(Event, type="mix_result"):
    kind: str  # preview | grid | export | bake | plain
    request_id: int
    path: str
    summary: str = ""
    error: float | None = None  # overall relative reconstruction error of an SVD export
    layers: int = 0  # layers changed (preview / bake) or modules written (export)
