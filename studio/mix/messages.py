"""What the mixer's jobs send back over the worker pipe, and how a mix travels as JSON params.

`MixResult` is one of the worker protocol's event types (`studio.worker.protocol` lists it; the mixer
knows nothing of the worker). It carries the request id the window gave, so a result can never be
mistaken for another panel's or an older one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from studio.errors import ConfigError
from studio.events import Event
from studio.mix.request import MixEntry, RenderRequest


@dataclass(frozen=True)
class MixResult(Event):
    """One mixer job's outcome: a preview or grid image, or an exported / baked file."""

    type: ClassVar[str] = "mix_result"
    kind: str  # preview | grid | export | bake | plain
    request_id: int
    path: str
    summary: str = ""
    error: float | None = None  # overall relative reconstruction error of an SVD export
    layers: int = 0  # layers changed (preview / bake) or modules written (export)


def entry_to_dict(e: MixEntry) -> dict[str, Any]:
    return {"path": e.path, "strength": e.strength, "unet": e.unet, "te": e.te,
            "blocks": dict(e.blocks), "enabled": e.enabled}


def entry_from_dict(d: dict[str, Any]) -> MixEntry:
    try:
        return MixEntry(path=str(d["path"]), strength=float(d.get("strength", 1.0)),
                        unet=None if d.get("unet") is None else float(d["unet"]),
                        te=None if d.get("te") is None else float(d["te"]),
                        blocks=tuple((str(k), float(v)) for k, v in (d.get("blocks") or {}).items()),
                        enabled=bool(d.get("enabled", True)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad LoRA entry in the mixer request: {exc}") from None


def request_to_dict(r: RenderRequest) -> dict[str, Any]:
    data = asdict(r)
    data["loras"] = [entry_to_dict(e) for e in r.loras]
    return data


def request_from_dict(d: dict[str, Any]) -> RenderRequest:
    try:
        fields = {k: v for k, v in d.items() if k != "loras"}
        return RenderRequest(**fields, loras=tuple(entry_from_dict(e) for e in d.get("loras", ())))
    except TypeError as exc:
        raise ConfigError(f"bad preview request: {exc}") from None
