"""Sampler names people know from the WebUIs → diffusers schedulers built from the model's own config."""

from __future__ import annotations

from typing import Any

from studio.errors import ConfigError

# name → (diffusers class name, extra config); only schedulers whose dependencies we ship (no torchsde)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {}),
    "dpm++_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
}


def make_scheduler(name: str, base_config: Any) -> Any:
    key = name.strip().lower().replace(" ", "_")
    if key not in SAMPLERS:
        raise ConfigError(f"unknown sampler `{name}`; choose one of {', '.join(SAMPLERS)}")
    import diffusers

    cls_name, extra = SAMPLERS[key]
    # diffusers drops keys listed in `_use_default_values` when converting between scheduler classes, so the
    # same model gives another timestep spacing depending on how its config was built; take the values as given
    config = {k: v for k, v in dict(base_config).items() if k != "_use_default_values"}
    return getattr(diffusers, cls_name).from_config(config, **extra)
