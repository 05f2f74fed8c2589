"""Speed options for the UNet: SDPA attention, channels-last memory format, torch.compile.

diffusers' default attention processor already uses SDPA (`ensure_sdpa` only restores it). Channels-last
is fastest for cuDNN's convolutions but usually slower on the CPU, hence `auto` = CUDA only.
`Module.compile()` compiles in place, so module names (peft's keys, our export) do not change.
"""

from __future__ import annotations

import torch

# the torch.compile backend; tests on the CPU swap in "aot_eager" to skip the C++ build
COMPILE_BACKEND = "inductor"


def use_channels_last(setting: str, device: torch.device) -> bool:
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def ensure_sdpa(unet) -> str:
    from diffusers.models.attention_processor import AttnProcessor2_0

    procs = getattr(unet, "attn_processors", {})
    kinds = sorted({type(p).__name__ for p in procs.values()})
    if kinds and kinds != ["AttnProcessor2_0"]:
        unet.set_attn_processor(AttnProcessor2_0())
    return ", ".join(kinds)


def apply_speed_options(unet, *, channels_last: bool, compile_unet: bool) -> list[str]:
    done = []
    if channels_last:
        unet.to(memory_format=torch.channels_last)
        done.append("channels-last")
    if compile_unet:
        unet.compile(backend=COMPILE_BACKEND)
        done.append(f"torch.compile ({COMPILE_BACKEND})")
    return done
