"""Speed options for the UNet: SDPA attention, channels-last memory format, torch.compile.

- Attention: diffusers' default processor calls `torch.nn.functional.scaled_dot_product_attention`, which
  picks FlashAttention or memory-efficient kernels on CUDA by itself; `ensure_sdpa` only puts it back if
  a model arrived with another processor, and says which one it found.
- Channels-last: cuDNN's convolutions are fastest on NHWC tensors with tensor cores; on the CPU it is
  usually slower, hence `auto` = on with CUDA only.
- torch.compile: `Module.compile()` compiles in place, so module names (and so peft's state-dict keys
  and our export) do not change. The first steps are slow while it compiles.
"""

from __future__ import annotations

import torch

# the torch.compile backend; tests on the CPU swap in "aot_eager" to skip the C++ build
COMPILE_BACKEND = "inductor"


def use_channels_last(setting: str, device: torch.device) -> bool:
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def ensure_sdpa(unet) -> str:
    """Make every attention processor the SDPA one; returns the name of what was there before."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    procs = getattr(unet, "attn_processors", {})
    kinds = sorted({type(p).__name__ for p in procs.values()})
    if kinds and kinds != ["AttnProcessor2_0"]:
        unet.set_attn_processor(AttnProcessor2_0())
    return ", ".join(kinds)


def apply_speed_options(unet, *, channels_last: bool, compile_unet: bool) -> list[str]:
    """Apply the options to the (already adapted) UNet; returns what was done, for the log."""
    done = []
    if channels_last:
        unet.to(memory_format=torch.channels_last)
        done.append("channels-last")
    if compile_unet:
        unet.compile(backend=COMPILE_BACKEND)
        done.append(f"torch.compile ({COMPILE_BACKEND})")
    return done
