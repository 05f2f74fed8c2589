"""The torch-free description of a mix and of a preview request: what the window builds and sends.

Strength semantics follow the WebUIs: one strength per LoRA; optionally separate UNet and text-encoder
strengths, which — like ComfyUI's `strength_model`/`strength_clip` and A1111's `<lora:name:te:unet>` —
replace the global strength for their part; then per-block weights multiply (BASE for the text encoders).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.errors import ConfigError
from studio.mix.blocks import block_weight, parse_weights

DEFAULT_SAMPLER = "euler"
#: the largest strength or block weight accepted (the window's sliders go to ±2; the WebUIs' users rarely pass 5)
MAX_STRENGTH = 100.0


@dataclass(frozen=True)
class MixEntry:
    """One LoRA in a mix. `unet`/`te` None: the global strength applies there too."""

    path: str
    strength: float = 1.0
    unet: float | None = None
    te: float | None = None
    blocks: tuple[tuple[str, float], ...] = ()  # (block ID, weight); unlisted blocks keep 1
    enabled: bool = True

    @property
    def block_weights(self) -> dict[str, float]:
        return dict(self.blocks)

    def module_strength(self, kohya_name: str) -> float:
        if not self.enabled:
            return 0.0
        part = self.te if kohya_name.startswith("lora_te") else self.unet
        return (self.strength if part is None else part) * block_weight(self.block_weights, kohya_name)

    def __post_init__(self) -> None:
        # NaN passes every comparison and ∞ or 1e30 overflows fp16: either way the mix would write a LoRA of
        # NaN/Inf weights and call it done, so every number is checked where an entry is made
        name = Path(self.path).name or self.path
        check_strength(self.strength, f"{name}: strength")
        for value, what in ((self.unet, "UNet strength (unet=)"), (self.te, "text-encoder strength (te=)")):
            if value is not None:
                check_strength(value, f"{name}: {what}")
        for block, weight in self.blocks:
            check_strength(weight, f"{name}: block weight {block}")


def check_strength(value: float, what: str) -> None:
    """A strength or block weight: a finite number within ±MAX_STRENGTH, else a ConfigError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} is {value!r}, expected a number")
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        raise ConfigError(f"{what} is {value:g}, expected a number between {-MAX_STRENGTH:g} and {MAX_STRENGTH:g}",
                          hint="strengths are usually between -2 and 2")


def with_blocks(entry: MixEntry, spec: str | Sequence[float] | Mapping[str, float] | None, family: str) -> MixEntry:
    """`entry` with block weights parsed from a preset name, a number list or a mapping (None: none)."""
    if spec is None or spec == "" or spec == {}:
        return replace(entry, blocks=())
    return replace(entry, blocks=tuple(parse_weights(spec, family).items()))


def parse_entry(text: str) -> tuple[MixEntry, str | None]:
    """`PATH[:STRENGTH][:unet=X][:te=Y][:blocks=PRESET|w,w,…]` → (entry, block spec to parse once the family is known).

    The path may itself contain colons (Windows drives): options are taken from the end while they parse.
    """
    segments = text.split(":")
    opts: dict[str, str] = {}
    strength: float | None = None
    while len(segments) > 1:
        seg = segments[-1].strip()
        key, eq, value = seg.partition("=")
        if eq and key.strip().lower() in ("unet", "te", "blocks", "strength", "s"):
            opts[key.strip().lower()] = value.strip()
        elif strength is None and not eq and _is_number(seg):
            strength = float(seg)
        else:
            break
        segments.pop()
    path = ":".join(segments)
    if not path:
        raise ConfigError(f"`{text}`: no file name before the strength")
    if "strength" in opts or "s" in opts:
        strength = _number(opts.get("strength", opts.get("s", "")), text)
    entry = MixEntry(path=path, strength=1.0 if strength is None else strength,
                     unet=_number(opts["unet"], text) if "unet" in opts else None,
                     te=_number(opts["te"], text) if "te" in opts else None)
    return entry, opts.get("blocks")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _number(s: str, text: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise ConfigError(f"`{text}`: `{s}` is not a number") from None


@dataclass(frozen=True)
class RenderRequest:
    """Everything one preview image depends on; the same request always gives the same image."""

    prompt: str
    negative: str = ""
    seed: int = 0
    steps: int = 20
    sampler: str = DEFAULT_SAMPLER
    width: int = 512
    height: int = 512
    guidance: float = 7.0
    loras: tuple[MixEntry, ...] = ()

    def validate(self) -> None:
        if not isinstance(self.guidance, (int, float)) or not math.isfinite(self.guidance) \
                or not 0 <= self.guidance <= 30:
            raise ConfigError(f"guidance scale is {self.guidance}, expected a number between 0 and 30")
        if not isinstance(self.seed, int) or not 0 <= self.seed <= 2**32 - 1:
            raise ConfigError(f"seed is {self.seed}, expected a whole number between 0 and {2**32 - 1}")
        if self.steps < 1 or self.steps > 200:
            raise ConfigError(f"steps must be between 1 and 200 (got {self.steps})")
        if any(side < 64 or side > 4096 or side % 8 for side in (self.width, self.height)):
            raise ConfigError(f"image size {self.width}×{self.height}: each side must be a multiple of 8, "
                              "64–4096")

    def with_strength(self, index: int, strength: float) -> RenderRequest:
        """LoRA `index` at one overall strength (a grid cell): separate UNet/TE strengths give way to it."""
        loras = list(self.loras)
        loras[index] = replace(loras[index], strength=strength, unet=None, te=None, enabled=True)
        return replace(self, loras=tuple(loras))
