"""From the modules being trained to a WebUI-loadable LoRA file (and to peft state dicts for checkpoints).

LoRA, LoCon and DoRA are written in the kohya layout, LoHa and LoKr in the LyCORIS layout. Every module's
alpha comes from the scale peft really applied (so rsLoRA and LoCon's conv alpha survive loaders that only
know alpha/rank); DoRA's `dora_scale` is computed against the base weights so ComfyUI and Forge rebuild
peft's weights. Beside every export goes `<name>.compat.json` (`studio.formats.compat`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from studio.config import NetworkConfig
from studio.errors import ConfigError
from studio.formats.compat import compat_report
from studio.formats.compat_report import write_sidecar
from studio.formats.kohya import lora_file_from_peft, lycoris_file_from_peft, save_lora_file
from studio.formats.names import KOHYA_PREFIX_OF, te_prefixes
from studio.train.networks import LYCORIS, layer_scales, tuner_layers


def _unwrap(module):
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def trained_modules(unet, trained_text_encoders, family: str) -> dict[str, object]:
    """The trained modules keyed by kohya prefix: `lora_unet`, then `lora_te` or `lora_te1`/`lora_te2`."""
    prefixes = (KOHYA_PREFIX_OF["unet"], *te_prefixes(family))
    return {prefix: _unwrap(m) for prefix, m in zip(prefixes, (unet, *trained_text_encoders))}


def adapter_state_dicts(unet, trained_text_encoders, family: str) -> dict[str, dict[str, torch.Tensor]]:
    from peft.utils import get_peft_model_state_dict

    return {prefix: get_peft_model_state_dict(m) for prefix, m in trained_modules(unet, trained_text_encoders,
                                                                                  family).items()}


def load_adapter_state_dicts(unet, trained_text_encoders, family: str, states: dict[str, dict[str, torch.Tensor]]):
    from peft.utils import set_peft_model_state_dict

    for prefix, module in trained_modules(unet, trained_text_encoders, family).items():
        if prefix not in states:
            held = ", ".join(sorted(states)) or "none"
            raise ConfigError(f"the checkpoint has no {prefix} weights (it holds {held})",
                              hint="the checkpoint is damaged or from another network; resume from an earlier one")
        try:
            result = set_peft_model_state_dict(module, states[prefix])
        except (RuntimeError, ValueError, KeyError) as exc:  # shapes of another rank or model
            raise ConfigError(f"the checkpoint does not match the network ({prefix}: {str(exc).splitlines()[0][:200]})",
                              hint="resume with the settings of the original run (its config.toml)") from None
        if unexpected := getattr(result, "unexpected_keys", None):
            raise ConfigError(f"the checkpoint does not match the network ({prefix}: {unexpected[:3]} …)",
                              hint="resume with the settings of the original run (its config.toml)")


def base_weights(modules: dict[str, object]):
    """(prefix, module path) → the layer's base weight, dequantised in the low-VRAM mode, read lazily."""
    from peft.utils.integrations import dequantize_module_weight

    layers = {prefix: tuner_layers(m) for prefix, m in modules.items()}
    return lambda prefix, path: dequantize_module_weight(layers[prefix][path].get_base_layer()).detach()


def export_lora(path: Path, *, unet, trained_text_encoders, family: str, network: NetworkConfig, dtype: str,
                metadata: dict[str, str], initial: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    modules = trained_modules(unet, trained_text_encoders, family)
    states = adapter_state_dicts(unet, trained_text_encoders, family)
    scales = {prefix: layer_scales(m) for prefix, m in modules.items()}
    if network.type in LYCORIS:
        lf = lycoris_file_from_peft(states, family, scales, metadata)
    else:
        lf = lora_file_from_peft(states, network.alpha, family, metadata, scales=scales, initial=initial,
                                 base_weight=base_weights(modules) if network.dora else None)
    save_lora_file(lf, path, dtype=dtype)
    write_sidecar(path, compat_report(lf))  # which WebUIs render it as trained: docs/compatibility.md
    return path
