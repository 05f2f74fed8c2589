"""Optimizers, their parameter groups (LoRA+), and the weights to evaluate with (schedule-free).

Each optimizer is the maintained implementation users know from other trainers, imported only when chosen;
a missing package is a clear error, except for 8-bit AdamW, which falls back to AdamW (its only point is
memory). LoRA+ (Hayou et al., 2024) gives B's group `ratio` × the learning rate, as B starts at zero.
Schedule-free AdamW trains at y and converges with the average x, which evaluation must use.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import torch

from studio.config import OptimizerConfig
from studio.errors import ConfigError

INSTALL_HINT = "install it into LoRA Studio's environment (pip install {pkg}), or choose another optimizer"


def trainable_parameters(module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def param_groups(trained: list, opt: OptimizerConfig) -> list[dict]:
    """One group per trained module (UNet: unet_lr, text encoders: text_encoder_lr); with LoRA+ each is split
    into its B (up) matrices at ratio × lr and the rest."""
    groups = []
    for i, module in enumerate(trained):
        lr = opt.unet_lr if i == 0 else opt.text_encoder_lr
        named = [(n, p) for n, p in getattr(module, "module", module).named_parameters() if p.requires_grad]
        if opt.lora_plus_ratio > 0:
            b = [p for n, p in named if ".lora_B." in n]
            if not b:
                raise ConfigError("LoRA+ needs LoRA up (B) matrices; this network has none",
                                  hint="set [optimizer] lora_plus_ratio = 0 for LoHa and LoKr")
            groups.append({"params": [p for n, p in named if ".lora_B." not in n], "lr": lr})
            groups.append({"params": b, "lr": lr * opt.lora_plus_ratio})
        else:
            groups.append({"params": [p for _, p in named], "lr": lr})
    return [g for g in groups if g["params"]]


def make_optimizer(trained: list, opt: OptimizerConfig, *, fused: bool, warmup_steps: int = 0,
                   warn=None) -> torch.optim.Optimizer:
    groups = param_groups(trained, opt)
    name = opt.name
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(groups, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay)
        except Exception as exc:  # not installed, or no kernel for this machine
            if warn:
                warn(f"8-bit AdamW is not available here ({type(exc).__name__}: {exc}); using AdamW with 32-bit "
                     "state instead (same results, more memory)")
            name = "adamw"
    if name == "adamw":
        kwargs = {"fused": True} if fused else {"foreach": True}
        return torch.optim.AdamW(groups, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay, **kwargs)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        # absolute learning rates, as sd-scripts recommends for LoRA: the relative step would scale each
        # update by the parameter's RMS, which is zero for the zero-initialised up matrices
        return Adafactor(groups, lr=opt.unet_lr, scale_parameter=False, relative_step=False, warmup_init=False,
                         weight_decay=opt.weight_decay)
    if name == "lion":
        Lion = _import("lion_pytorch", "lion-pytorch", "Lion")
        return Lion(groups, betas=opt.betas, weight_decay=opt.weight_decay)
    if name == "prodigy":
        Prodigy = _import("prodigyopt", "prodigyopt", "Prodigy")
        if warn and min(g["lr"] for g in groups) < 0.1:
            warn("Prodigy sets its own step size and expects learning rates around 1.0; smaller values slow it "
                 "down proportionally")
        return Prodigy(groups, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay,
                       use_bias_correction=True, safeguard_warmup=warmup_steps > 0)
    if name == "schedule_free_adamw":
        AdamWScheduleFree = _import("schedulefree", "schedulefree", "AdamWScheduleFree")
        optimizer = AdamWScheduleFree(groups, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay,
                                      warmup_steps=warmup_steps)
        optimizer.train()
        return optimizer
    raise ConfigError(f"unknown optimizer {opt.name!r}")


def _import(module: str, package: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError:
        raise ConfigError(f"the {attr} optimizer needs the `{package}` package, which is not installed",
                          hint=INSTALL_HINT.format(pkg=package)) from None


def is_schedule_free(optimizer) -> bool:
    inner = getattr(optimizer, "optimizer", optimizer)
    return type(inner).__name__.endswith("ScheduleFree")


@contextlib.contextmanager
def evaluation_weights(optimizer, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """Schedule-free's averaged x within the block (a no-op for other optimizers); afterwards the training
    values from a copy rather than by `train()`'s inverse arithmetic, so a mid-run export changes nothing."""
    inner = getattr(optimizer, "optimizer", optimizer)
    if not is_schedule_free(inner):
        yield
        return
    saved = [p.detach().clone() for p in params]
    inner.eval()
    try:
        yield
    finally:
        inner.train()
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
