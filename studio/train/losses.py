"""Loss functions and weightings, as small pure functions beside the loop (diffusers' `compute_snr` shape).

Min-SNR-γ (Hang et al., 2023) caps the easy low-noise timesteps that dominate the gradient. L1 and
pseudo-Huber (sd-scripts' form, so `huber_c` means the same) let an image that cannot be fitted pull
linearly rather than with its squared error. With masks each image's loss is the mask-weighted mean, so a
mask that keeps a quarter of the image does not shrink that image's gradient fourfold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_snr(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio α̅_t / (1 − α̅_t) of each timestep, in fp32."""
    alphas_cumprod = scheduler.alphas_cumprod.to(device=timesteps.device, dtype=torch.float32)
    a = alphas_cumprod[timesteps]
    return a / (1.0 - a).clamp_min(1e-20)


def min_snr_weights(snr: torch.Tensor, gamma: float, prediction: str) -> torch.Tensor:
    """min(SNR, γ) / SNR for epsilon, min(SNR, γ) / (SNR + 1) for v-prediction (whose target already weighs
    by SNR + 1); at zero SNR (zero-terminal-SNR schedules) the epsilon weight's limit, 1, instead of 0/0."""
    clipped = torch.minimum(snr, torch.full_like(snr, gamma))
    if prediction == "v_prediction":
        return clipped / (snr + 1.0)
    return torch.where(snr > 0, clipped / snr.clamp_min(1e-20), torch.ones_like(snr))


def elementwise_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, huber_c: float = 0.1) -> torch.Tensor:
    pred, target = pred.float(), target.float()
    if kind == "mse":
        return F.mse_loss(pred, target, reduction="none")
    if kind == "l1":
        return F.l1_loss(pred, target, reduction="none")
    if kind == "huber":
        return 2 * huber_c * (torch.sqrt((pred - target) ** 2 + huber_c**2) - huber_c)
    raise ValueError(f"unknown loss {kind!r}")


def per_example_loss(loss: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss of each example (b); with masks (b × 1 × h × w) the mask-weighted mean."""
    if masks is None:
        return loss.mean(dim=tuple(range(1, loss.dim())))
    masks = masks.to(loss.device, loss.dtype)
    weighted = (loss * masks).sum(dim=(1, 2, 3))
    total = (masks.sum(dim=(1, 2, 3)) * loss.shape[1]).clamp_min(1e-8)
    return weighted / total
