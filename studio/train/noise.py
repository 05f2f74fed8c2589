"""The noise the model learns to remove, and the noise schedule it is added with.

Noise offset (Guttenberg, 2023) adds the zero frequency that Gaussian noise lacks, so very dark and very
bright images can be learnt; pyramid noise (Whitaker, 2023) does the same across all low frequencies.
Input perturbation (Ning et al., 2023) gives the UNet's input slightly more noise than its target, against
exposure bias. Zero terminal SNR (Lin et al., 2023) makes the last timestep pure noise, as sampling
assumes. All randomness comes from the generator passed in, in a fixed order, so resumes are exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from studio.errors import ConfigError


def offset_noise(noise: torch.Tensor, offset: float, gen: torch.Generator) -> torch.Tensor:
    """`noise` plus offset × N(0, 1) per image and channel (constant over the pixels)."""
    if offset <= 0:
        return noise
    shift = torch.randn((noise.shape[0], noise.shape[1], 1, 1), generator=gen, dtype=torch.float32)
    return noise + offset * shift.to(noise.device, noise.dtype)


def pyramid_noise(noise: torch.Tensor, iterations: int, discount: float, gen: torch.Generator) -> torch.Tensor:
    """`noise` plus upsampled coarser noise at discount^i, re-normalised to unit std. Level i is r^i smaller,
    r random in [2, 4) (as in the original and sd-scripts) so the levels do not share a grid."""
    if iterations <= 0:
        return noise
    b, c, h, w = noise.shape
    out = noise.float()
    for i in range(1, iterations + 1):
        r = float(torch.rand((), generator=gen)) * 2 + 2
        hn, wn = max(1, int(h / r**i)), max(1, int(w / r**i))
        coarse = torch.randn((b, c, hn, wn), generator=gen, dtype=torch.float32).to(noise.device)
        out = out + F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * discount**i
        if hn == 1 or wn == 1:
            break
    return (out / out.std()).to(noise.dtype)


def perturbation(noise: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """The noise to build the UNet's input from: `noise` + amount × N(0, 1) (the target stays `noise`)."""
    if amount <= 0:
        return noise
    extra = torch.randn(noise.shape, generator=gen, dtype=torch.float32).to(noise.device, noise.dtype)
    return noise + amount * extra


def training_scheduler(scheduler, *, zero_terminal_snr: bool, prediction: str):
    if not zero_terminal_snr:
        return scheduler
    if prediction != "v_prediction":
        raise ConfigError("zero terminal SNR needs a v-prediction model: at the last timestep the input is pure "
                          "noise, so an epsilon model would only learn to copy its input",
                          hint="turn zero_terminal_snr off, or train on a v-prediction model "
                               "([model] prediction = \"v_prediction\")")
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler.config, rescale_betas_zero_snr=True)
