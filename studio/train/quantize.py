"""QLoRA-style low-VRAM mode: the frozen UNet's linear layers in 8-bit or 4-bit NF4 (bitsandbytes).

The base weights are only read, so they can be stored quantised (Dettmers et al., 2023); peft wraps
bitsandbytes' layers like any linear layer and keeps the adapter in full precision. Convolutions stay as
they are: bitsandbytes has none.
"""

from __future__ import annotations

import torch

from studio.errors import ConfigError


def quantize_linear_layers(model: torch.nn.Module, mode: str, *, compute_dtype: torch.dtype,
                           device: torch.device) -> int:
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise ConfigError("the low-VRAM mode (base_quantization) needs the `bitsandbytes` package",
                          hint="pip install bitsandbytes, or set [network] base_quantization = \"none\"") from None
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            weight = child.weight.data.to("cpu", torch.float32)
            if mode == "nf4":
                new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                        compute_dtype=compute_dtype, quant_type="nf4")
                new.weight = bnb.nn.Params4bit(weight.to(compute_dtype), requires_grad=False, quant_type="nf4")
            elif mode == "int8":
                new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                          has_fp16_weights=False, threshold=6.0)
                new.weight = bnb.nn.Int8Params(weight.to(compute_dtype), requires_grad=False, has_fp16_weights=False)
            else:
                raise ConfigError(f"unknown base quantization {mode!r}; use int8 or nf4")
            if child.bias is not None:
                new.bias = torch.nn.Parameter(child.bias.data.to(compute_dtype), requires_grad=False)
            setattr(parent, name, new.to(device))
            replaced += 1
    return replaced
