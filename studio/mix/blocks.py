"""Per-block weights: which UNet block a LoRA module lives in, and the presets users know from the WebUIs.

Block IDs follow lora-block-weight / supermerger / sd-scripts (`get_block_index`): BASE = the text
encoder(s), INnn / MID / OUTnn = the original `input_blocks.nn` / `middle_block` / `output_blocks.nn`;
modules outside every block get weight 1, as in those tools. A list of 17 (SD 1.x/2.x) or 12 (SDXL)
weights names only the blocks with attention; the others keep 1, as lora-block-weight widens 17 to 26.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from studio.errors import ConfigError

SD_IDS_26 = ("BASE", *(f"IN{i:02d}" for i in range(12)), "MID", *(f"OUT{i:02d}" for i in range(12)))
SD_IDS_17 = ("BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "MID",
             *(f"OUT{i:02d}" for i in range(3, 12)))
XL_IDS_20 = ("BASE", *(f"IN{i:02d}" for i in range(9)), "MID", *(f"OUT{i:02d}" for i in range(9)))
XL_IDS_12 = ("BASE", "IN04", "IN05", "IN07", "IN08", "MID", *(f"OUT{i:02d}" for i in range(6)))

# lora-block-weight's default presets over the 17 SD 1.x blocks (its own numbers)
_SD_PRESETS_17 = {
    "NONE": "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
    "ALL": "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
    "INS": "1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
    "IND": "1,0,0,0,1,1,1,0,0,0,0,0,0,0,0,0,0",
    "INALL": "1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0",
    "MIDD": "1,0,0,0,1,1,1,1,1,1,1,1,0,0,0,0,0",
    "OUTD": "1,0,0,0,0,0,0,0,1,1,1,1,0,0,0,0,0",
    "OUTS": "1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1",
    "OUTALL": "1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1",
    "ALL0.5": "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
}
# the same ideas over SDXL's 12 attention blocks (shallow = IN04/05, OUT03–05; deep = IN07/08, MID, OUT00–02)
_XL_PRESETS_12 = {
    "NONE": "0,0,0,0,0,0,0,0,0,0,0,0",
    "ALL": "1,1,1,1,1,1,1,1,1,1,1,1",
    "INS": "1,1,1,0,0,0,0,0,0,0,0,0",
    "IND": "1,0,0,1,1,0,0,0,0,0,0,0",
    "INALL": "1,1,1,1,1,0,0,0,0,0,0,0",
    "MIDD": "1,0,0,1,1,1,1,1,1,0,0,0",
    "OUTD": "1,0,0,0,0,0,1,1,1,0,0,0",
    "OUTS": "1,0,0,0,0,0,0,0,0,1,1,1",
    "OUTALL": "1,0,0,0,0,0,1,1,1,1,1,1",
    "ALL0.5": "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
}
PRESET_NAMES = tuple(_SD_PRESETS_17)

_UPDOWN = re.compile(r"^lora_unet_(down|up)_blocks_(\d+)_(attentions|resnets|downsamplers|upsamplers)_(\d+)_")
_SGM = re.compile(r"^lora_unet_(input_blocks|output_blocks)_(\d+)_")


def block_ids(family: str, *, full: bool = True) -> tuple[str, ...]:
    """All block IDs of `family` (`full`) or only those with attention (the short list)."""
    if family == "sdxl":
        return XL_IDS_20 if full else XL_IDS_12
    return SD_IDS_26 if full else SD_IDS_17


def block_of(kohya_name: str) -> str | None:
    """The block ID of a kohya module name, or None for modules outside every block."""
    if kohya_name.startswith("lora_te"):
        return "BASE"
    if kohya_name.startswith(("lora_unet_mid_block_", "lora_unet_middle_block_")):
        return "MID"
    if kohya_name.startswith("lora_unet_conv_in"):
        return "IN00"
    if m := _SGM.match(kohya_name):
        return f"{'IN' if m[1] == 'input_blocks' else 'OUT'}{int(m[2]):02d}"
    if m := _UPDOWN.match(kohya_name):
        i, kind, j = int(m[2]), m[3], int(m[4])
        if m[1] == "down":
            return f"IN{3 * i + (3 if kind == 'downsamplers' else j + 1):02d}"
        return f"OUT{3 * i + (2 if kind == 'upsamplers' else j):02d}"
    return None


def normalise_id(block: str) -> str:
    """`M00` (lora-block-weight's spelling) → `MID`; upper-case; `IN4` → `IN04`."""
    b = block.strip().upper()
    if b in ("M00", "MID", "MIDDLE"):
        return "MID"
    m = re.fullmatch(r"(IN|OUT)(\d{1,2})", b)
    return f"{m[1]}{int(m[2]):02d}" if m else b


def parse_weights(spec: str | Sequence[float] | Mapping[str, float], family: str) -> dict[str, float]:
    """Block weights from a preset name, a list of 12/17/20/26 numbers (or "1,0,…"), or {block: weight}."""
    if isinstance(spec, Mapping):
        valid = set(block_ids(family))
        out = {}
        for k, v in spec.items():
            b = normalise_id(k)
            if b not in valid:
                raise ConfigError(f"unknown block `{k}` for {family}; blocks are {', '.join(block_ids(family))}")
            out[b] = _weight(v, b)
        return out
    if isinstance(spec, str):
        presets = _XL_PRESETS_12 if family == "sdxl" else _SD_PRESETS_17
        spec = presets.get(spec.strip().upper(), spec)
        try:
            values = [float(x) for x in spec.replace(" ", "").split(",") if x]
        except ValueError:
            raise ConfigError(f"block weights `{spec}`: neither a preset ({', '.join(presets)}) "
                              "nor a list of numbers") from None
    else:
        try:
            values = [float(x) for x in spec]
        except (TypeError, ValueError):
            raise ConfigError(f"block weights {list(spec)!r}: not a list of numbers") from None
    for ids in (block_ids(family, full=False), block_ids(family, full=True)):
        if len(values) == len(ids):
            return {b: _weight(v, b) for b, v in zip(ids, values)}
    short, full = len(block_ids(family, full=False)), len(block_ids(family))
    raise ConfigError(f"{len(values)} block weights given; {family} takes {short} or {full}")


def _weight(value, block: str) -> float:
    """One block weight as a float: a finite number of sane size (NaN would pass every comparison later)."""
    from studio.mix.request import MAX_STRENGTH

    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"block weight {block} is {value!r}, expected a number") from None
    if not math.isfinite(w) or abs(w) > MAX_STRENGTH:
        raise ConfigError(f"block weight {block} is {w:g}, expected a number between {-MAX_STRENGTH:g} and "
                          f"{MAX_STRENGTH:g}", hint="block weights are usually between 0 and 1")
    return w


def block_weight(weights: Mapping[str, float], kohya_name: str) -> float:
    """The weight for one module (1 when its block is not listed or it is outside every block)."""
    return float(weights.get(block_of(kohya_name) or "", 1.0)) if weights else 1.0
