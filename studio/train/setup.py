"""Stage functions that prepare a run, in the diffusers recipe's order: precision → freeze → adapters →
upcast trainable params → optimizer → LR schedule. Each takes explicit arguments and returns what it made.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from studio.config import NetworkConfig, OptimizerConfig, ScheduleConfig
from studio.train.targets import TEXT_ENCODER, unet_targets


@dataclass(frozen=True)
class Precision:
    mixed: str  # "no" | "fp16" | "bf16" (what accelerate is told)
    weights: torch.dtype  # dtype of the frozen base weights


def choose_precision(requested: str, device: torch.device) -> Precision:
    """fp32 on CPU (CPU autocast is slower than fp32 for these models); bf16 where the GPU has it."""
    if device.type != "cuda" or requested == "no":
        return Precision("no", torch.float32)
    if requested == "auto":
        requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return Precision(requested, torch.bfloat16 if requested == "bf16" else torch.float16)


def lora_config(net: NetworkConfig, target_modules: str):
    from peft import LoraConfig

    # peft's default init (Kaiming-uniform A, zero B) is the one sd-scripts uses: the adapter starts as a no-op
    return LoraConfig(r=net.rank, lora_alpha=net.alpha, lora_dropout=net.dropout, target_modules=target_modules,
                      init_lora_weights=True)


def add_adapters(unet, text_encoders, net: NetworkConfig, *, seed: int) -> list:
    """Freeze the base, add LoRA to the UNet (and text encoders if trained); return the trained modules."""
    unet.requires_grad_(False)
    for te in text_encoders:
        te.requires_grad_(False)
    torch.manual_seed(seed)  # LoRA initialisation draws from the global generator
    unet.add_adapter(lora_config(net, unet_targets(net.targets)))
    trained = [unet]
    if net.train_text_encoder:
        for te in text_encoders:
            te.add_adapter(lora_config(net, TEXT_ENCODER))
            trained.append(te)
    for module in trained:
        for p in module.parameters():
            if p.requires_grad:
                p.data = p.data.float()  # only the trainable LoRA params are upcast to fp32
    return trained


def trainable_parameters(module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def make_optimizer(trained: list, opt: OptimizerConfig, *, fused: bool) -> torch.optim.Optimizer:
    groups = [{"params": trainable_parameters(trained[0]), "lr": opt.unet_lr}]
    for te in trained[1:]:
        groups.append({"params": trainable_parameters(te), "lr": opt.text_encoder_lr})
    kwargs = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(groups, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay, **kwargs)


def make_lr_scheduler(optimizer, sched: ScheduleConfig, num_processes: int):
    from diffusers.optimization import get_scheduler

    # accelerate steps a prepared scheduler once per process, hence the scaling (as in diffusers' recipe)
    return get_scheduler(sched.lr_scheduler, optimizer=optimizer,
                         num_warmup_steps=sched.warmup_steps * num_processes,
                         num_training_steps=sched.max_steps * num_processes)
