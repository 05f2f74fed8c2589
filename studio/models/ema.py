"""The EMA copy of the UNet in CompVis/LDM checkpoints, and the `model.ema = auto | use | ignore` choice.

LDM's trainer (`ldm.modules.ema.LitEma`) saves the EMA next to the trained weights (see `ema_key`). `auto`
(and `ignore`) trains on the non-EMA weights, which is what AUTOMATIC1111 and ComfyUI load from such a file,
so the LoRA is trained on the model users render with; `use` swaps the EMA copy in.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from studio.errors import ModelLoadError

EMA_PREFIX = "model_ema."
UNET_PREFIX = "model.diffusion_model."
_BOOKKEEPING = ("model_ema.decay", "model_ema.num_updates")
CHOICES = ("auto", "use", "ignore")


def ema_key(unet_key: str) -> str:
    """`model.diffusion_model.input_blocks.0.0.weight` → `model_ema.diffusion_modelinput_blocks00weight`."""
    return EMA_PREFIX + "".join(unet_key.split(".")[1:])


def has_ema(keys: Iterable[str]) -> bool:
    """Whether a checkpoint carries EMA weights (not just LitEma's decay / update counter)."""
    return any(k.startswith(EMA_PREFIX) and k not in _BOOKKEEPING for k in keys)


def choose(name: str, present: bool, setting: str) -> str:
    """Which UNet weights load (`ema`, `non-ema`, or `none` for a file with one copy) for the user's setting."""
    if setting not in CHOICES:
        raise ModelLoadError(f"unknown EMA setting {setting!r}", hint="use auto, use or ignore")
    if not present:
        if setting == "use":
            raise ModelLoadError(f"{name} contains no EMA weights (no model_ema.* keys), so `ema = use` cannot "
                                 "be honoured", hint="set the model's EMA setting to auto")
        return "none"
    return "ema" if setting == "use" else "non-ema"


def note(used: str) -> str:
    if used == "ema":
        return "contains EMA weights: training uses them (EMA set to use)"
    return "contains EMA weights: training uses the non-EMA weights, as the WebUIs load it (set EMA to use to " \
           "train on the EMA copy)"


def prepare(state: MutableMapping[str, Any], used: str, name: str) -> None:
    """The state dict the converters see, in place: the chosen UNet copy under `model.diffusion_model.`, and
    no EMA keys (they are not converted, and hold as much memory as the UNet). With `used` = ema, every UNet
    parameter must have a twin: a half-EMA UNet would be neither model."""
    unet_keys = [k for k in state if k.startswith(UNET_PREFIX)] if used == "ema" else []
    missing = [k for k in unet_keys if ema_key(k) not in state]
    if missing:
        raise ModelLoadError(f"{name}: the EMA weights are incomplete ({len(missing)} of {len(unet_keys)} UNet "
                             f"weights have no EMA copy, e.g. `{missing[0]}`)",
                             hint="set the model's EMA setting to auto to train on the non-EMA weights")
    for key in unet_keys:
        twin = state[ema_key(key)]
        if tuple(twin.shape) != tuple(state[key].shape):
            raise ModelLoadError(f"{name}: the EMA copy of `{key}` has shape {tuple(twin.shape)}, the weight "
                                 f"{tuple(state[key].shape)}", hint="set the model's EMA setting to auto")
        state[key] = twin
    for key in [k for k in state if k.startswith(EMA_PREFIX)]:
        del state[key]
