"""From the modules being trained to a kohya-layout LoRA file (and to peft state dicts for checkpoints)."""

from __future__ import annotations

from pathlib import Path

import torch

from studio.formats.kohya import lora_file_from_peft, save_lora_file, te_prefixes


def _unwrap(module):
    return getattr(module, "module", module)


def adapter_state_dicts(unet, trained_text_encoders, family: str) -> dict[str, dict[str, torch.Tensor]]:
    """peft state dicts keyed by kohya prefix: `lora_unet`, then `lora_te` or `lora_te1`/`lora_te2`."""
    from peft.utils import get_peft_model_state_dict

    out = {"lora_unet": get_peft_model_state_dict(_unwrap(unet))}
    for prefix, te in zip(te_prefixes(family), trained_text_encoders):
        out[prefix] = get_peft_model_state_dict(_unwrap(te))
    return out


def load_adapter_state_dicts(unet, trained_text_encoders, family: str, states: dict[str, dict[str, torch.Tensor]]):
    from peft.utils import set_peft_model_state_dict

    modules = {"lora_unet": _unwrap(unet)}
    modules.update({p: _unwrap(te) for p, te in zip(te_prefixes(family), trained_text_encoders)})
    for prefix, module in modules.items():
        result = set_peft_model_state_dict(module, states[prefix])
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ValueError(f"checkpoint does not match the network ({prefix}: {unexpected[:3]} …)")


def export_lora(path: Path, *, unet, trained_text_encoders, family: str, alpha: float, dtype: str,
                metadata: dict[str, str]) -> Path:
    lf = lora_file_from_peft(adapter_state_dicts(unet, trained_text_encoders, family), alpha, family, metadata)
    return save_lora_file(lf, path, dtype=dtype)
