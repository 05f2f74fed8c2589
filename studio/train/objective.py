"""The diffusion training objective: noise the latents, predict, compare — one function for training and
validation, so the validation loss measures exactly what training optimises (minus the randomness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from studio.config import ProjectConfig
from studio.train.losses import compute_snr, elementwise_loss, min_snr_weights, per_example_loss
from studio.train.noise import offset_noise, perturbation, pyramid_noise


@dataclass(frozen=True)
class Objective:
    prediction: str  # epsilon | v_prediction
    loss: str = "mse"
    huber_c: float = 0.1
    min_snr_gamma: float = 0.0
    noise_offset: float = 0.0
    pyramid_iterations: int = 0
    pyramid_discount: float = 0.3
    input_perturbation: float = 0.0

    @classmethod
    def from_config(cls, cfg: ProjectConfig, prediction: str) -> "Objective":
        opt, sch = cfg.optimizer, cfg.schedule
        return cls(prediction=prediction, loss=opt.loss, huber_c=opt.huber_c, min_snr_gamma=opt.min_snr_gamma,
                   noise_offset=sch.noise_offset, pyramid_iterations=sch.pyramid_noise_iterations,
                   pyramid_discount=sch.pyramid_noise_discount, input_perturbation=sch.input_perturbation)


def diffusion_loss(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latents: torch.Tensor, scheduler,
                   objective: Objective, gen: torch.Generator, *, weights: torch.Tensor | None = None,
                   masks: torch.Tensor | None = None, timesteps: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None, augment: bool = True) -> torch.Tensor:
    """Draws, in order: the noise, the timesteps, each enabled augmentation; validation passes `noise`,
    `timesteps` and `augment=False`, so nothing random is left."""
    device = latents.device
    if noise is None:
        noise = torch.randn(latents.shape, generator=gen, dtype=torch.float32).to(device, latents.dtype)
    if timesteps is None:
        steps = scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (latents.shape[0],), generator=gen).to(device)
    input_noise = noise
    if augment:
        noise = offset_noise(noise, objective.noise_offset, gen)
        noise = pyramid_noise(noise, objective.pyramid_iterations, objective.pyramid_discount, gen)
        input_noise = perturbation(noise, objective.input_perturbation, gen)
    noisy = scheduler.add_noise(latents, input_noise, timesteps)
    target = noise if objective.prediction == "epsilon" else scheduler.get_velocity(latents, noise, timesteps)
    pred = model(noisy, timesteps)
    per = per_example_loss(elementwise_loss(pred, target, objective.loss, objective.huber_c), masks)
    if objective.min_snr_gamma > 0:
        per = per * min_snr_weights(compute_snr(scheduler, timesteps), objective.min_snr_gamma,
                                    objective.prediction).to(per.device)
    if weights is not None:
        per = per * weights.to(per.device, per.dtype)
    return per.mean()
