"""Which adapter goes on which layer: peft configs for LoRA, LoCon, DoRA, rsLoRA, LoHa and LoKr.

We own the choice of layers, ranks and scales; peft owns the layers. LoCon is LoRA on the ResNet blocks'
convolutions too, as sd-scripts' `conv_dim` does it: the 3×3 convolutions get their own rank and alpha.
PiSSA is initialised here rather than by peft, which refuses convolutions (SD 1.x's `proj_in`/`proj_out`
are 1×1 ones): peft's algorithm on the flattened kernel, held equal to peft's own by a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from studio.config import NetworkConfig
from studio.errors import ConfigError
from studio.train.targets import TEXT_ENCODER, unet_targets
from studio.validate import LYCORIS  # which combinations are allowed is studio.validate's to say

# the convolution blocks LoCon adapts (diffusers module names, SD 1.x/2.x and SDXL alike)
RESNET_TARGETS = r".*(resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)|(downsamplers|upsamplers)\.0\.conv)"
# the 3×3 convolutions among them, which take conv_rank / conv_alpha (peft pattern: matched at a name's end)
CONV_3X3 = r"conv1|conv2|downsamplers\.0\.conv|upsamplers\.0\.conv"
ADAPTER = "default"


def unet_target_regex(net: NetworkConfig) -> str:
    base = unet_targets(net.targets)
    if net.type == "lora":
        return base
    return f"(?:{base})|(?:{RESNET_TARGETS})"


def adapter_config(net: NetworkConfig, target_modules: str, *, convs: bool = False):
    """The peft config for one model (`convs`: the target set includes the ResNet convolutions)."""
    patterns = ({"rank_pattern": {CONV_3X3: net.conv_rank or net.rank},  # 0: as the linear layers
                 "alpha_pattern": {CONV_3X3: net.conv_alpha or net.alpha}} if convs else {})
    if net.type in ("lora", "locon"):
        from peft import LoraConfig

        # peft's default init (Kaiming-uniform A, zero B) is the one sd-scripts uses: the adapter starts as a no-op
        return LoraConfig(r=net.rank, lora_alpha=net.alpha, lora_dropout=net.dropout, target_modules=target_modules,
                          init_lora_weights=True, use_dora=net.dora, use_rslora=net.rslora, **patterns)
    if net.type in ("loha", "lokr"):
        from peft import LoHaConfig, LoKrConfig

        cls, extra = ((LoHaConfig, {}) if net.type == "loha"
                      else (LoKrConfig, {"decompose_factor": net.lokr_factor}))
        return cls(r=net.rank, alpha=net.alpha, target_modules=target_modules, init_weights=True,
                   use_effective_conv2d=False, **extra, **patterns)
    raise ConfigError(f"unknown network type {net.type!r}")


def add_adapters(unet, text_encoders, net: NetworkConfig, *, train_text_encoder: bool, seed: int) -> list:
    """Freeze the base, add the adapter to the UNet (and the text encoders if trained), initialise it;
    return the trained modules, UNet first. Only the trainable adapter parameters are upcast to fp32."""
    for module in (unet, *text_encoders):
        module.requires_grad_(False)
    torch.manual_seed(seed)  # adapter initialisation draws from the global generator
    unet.add_adapter(adapter_config(net, unet_target_regex(net), convs=net.type != "lora"))
    trained = [unet]
    if train_text_encoder:
        for te in text_encoders:
            te.add_adapter(adapter_config(net, TEXT_ENCODER))
            trained.append(te)
    for module in trained:
        if net.init == "pissa":
            pissa_init_model(module)
        for p in module.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    return trained


def tuner_layers(module) -> dict[str, object]:
    """peft's adapted layers of `module` by module path (`down_blocks.0.attentions.0.proj_in`)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    module = getattr(module, "module", module)
    return {name: m for name, m in module.named_modules() if isinstance(m, BaseTunerLayer)}


@torch.no_grad()
def pissa_init(layer) -> None:
    """PiSSA: B·A × scale = the top-r singular part of W; the base keeps W − that, so the sum is unchanged."""
    base = layer.get_base_layer()
    weight = base.weight
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    r, scale = layer.r[ADAPTER], layer.scaling[ADAPTER]
    u, s, vh = torch.linalg.svd(flat, full_matrices=False)
    sr = s[:r] / scale
    a = torch.diag(torch.sqrt(sr)) @ vh[:r]
    b = u[:, :r] @ torch.diag(torch.sqrt(sr))
    lora_a, lora_b = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
    lora_a.data = a.reshape(lora_a.shape).to(lora_a.dtype).contiguous()
    lora_b.data = b.reshape(lora_b.shape).to(lora_b.dtype).contiguous()
    base.weight.data = (flat - scale * (b @ a)).reshape(weight.shape).to(weight.dtype)


def pissa_init_model(module) -> int:
    layers = tuner_layers(module)
    for layer in layers.values():
        pissa_init(layer)
    return len(layers)


@dataclass(frozen=True)
class LayerScale:
    rank: int
    scale: float  # what peft multiplies the update by (alpha/r, alpha/√r, conv alpha …)


def layer_scales(module) -> dict[str, LayerScale]:
    """Rank and actual scale of every adapted layer, read from peft, for the export's alphas."""
    return {name: LayerScale(int(layer.r[ADAPTER]), float(layer.scaling[ADAPTER]))
            for name, layer in tuner_layers(module).items()}


def network_metadata(net: NetworkConfig) -> tuple[str, dict[str, str], int, float]:
    """(ss_network_module, _args, _dim, _alpha) of the export, as sd-scripts and LyCORIS write them."""
    factor = 2 if net.init == "pissa" else 1
    dim = net.rank * factor
    # the linear layers' alpha is alpha × √rank under rsLoRA, so that alpha/rank = alpha/√rank
    alpha = (net.alpha * math.sqrt(net.rank) if net.rslora else net.alpha) * factor
    args: dict[str, str] = {"targets": net.targets}
    if net.type != "lora":
        args["conv_dim"] = str(net.conv_rank or net.rank)
        args["conv_alpha"] = str(net.conv_alpha or net.alpha)
    if net.type in LYCORIS or net.dora:
        args["algo"] = net.type
        if net.dora:
            args["dora_wd"] = "True"
        if net.type == "lokr":
            args["factor"] = str(net.lokr_factor)
        return "lycoris.kohya", args, dim, alpha
    if net.rslora:
        args["rslora"] = "True"
    if net.init == "pissa":
        args["init"] = "pissa"
    return "networks.lora", args, dim, alpha
