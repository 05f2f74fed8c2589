"""The training objective: min-SNR-γ, noise offset, pyramid noise, input perturbation, L1/Huber, masks,
v-prediction and zero terminal SNR."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors import safe_open

from studio.errors import ConfigError
from studio.events import Failed, Finished, Sample
from studio.train.engine import run_training
from studio.train.losses import compute_snr, elementwise_loss, min_snr_weights, per_example_loss
from studio.train.noise import offset_noise, perturbation, pyramid_noise, training_scheduler
from studio.train.objective import Objective, diffusion_loss
from tests.conftest import tiny_config


def _ddpm(prediction="epsilon", **extra):
    from diffusers import DDPMScheduler

    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         num_train_timesteps=1000, prediction_type=prediction, **extra)


def _alphas_cumprod() -> torch.Tensor:
    """SD's schedule computed here from its definition, independently of diffusers."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


def test_min_snr_weights_equal_the_formula():
    sched = _ddpm()
    t = torch.tensor([0, 10, 100, 250, 500, 750, 999])
    a = _alphas_cumprod()[t]
    snr = a / (1 - a)
    assert torch.allclose(compute_snr(sched, t).double(), snr, rtol=1e-4)
    for gamma in (1.0, 5.0, 20.0):
        eps = min_snr_weights(compute_snr(sched, t), gamma, "epsilon").double()
        v = min_snr_weights(compute_snr(sched, t), gamma, "v_prediction").double()
        assert torch.allclose(eps, torch.clamp(snr, max=gamma) / snr, rtol=1e-4)
        assert torch.allclose(v, torch.clamp(snr, max=gamma) / (snr + 1), rtol=1e-4)
    # low noise (high SNR) is down-weighted, high noise is not
    w = min_snr_weights(compute_snr(sched, t), 5.0, "epsilon")
    assert w[0] < 0.01 and w[-1] == 1.0


def test_min_snr_is_applied_per_example_in_the_loss():
    sched = _ddpm()
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([5, 400, 900])
    zero = lambda noisy, ts: torch.zeros_like(noisy)  # noqa: E731 - error = the target itself
    plain = diffusion_loss(zero, latents, sched, Objective("epsilon"), torch.Generator(), noise=noise, timesteps=t)
    weighted = diffusion_loss(zero, latents, sched, Objective("epsilon", min_snr_gamma=5.0), torch.Generator(),
                              noise=noise, timesteps=t)
    per = (noise**2).mean(dim=(1, 2, 3))
    assert plain.item() == pytest.approx(per.mean().item(), rel=1e-6)
    expected = (per * min_snr_weights(compute_snr(sched, t), 5.0, "epsilon")).mean()
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)
    assert weighted < plain


def test_noise_offset_adds_a_per_channel_constant():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4000, 4, 8, 8, generator=gen)
    shifted = offset_noise(base, 0.5, torch.Generator().manual_seed(1))
    diff = shifted - base
    assert torch.allclose(diff, diff[:, :, :1, :1].expand_as(diff), atol=1e-6)  # constant over the pixels
    assert diff[:, :, 0, 0].std().item() == pytest.approx(0.5, rel=0.05)
    assert torch.equal(offset_noise(base, 0.0, gen), base)


def test_pyramid_noise_is_unit_variance_and_low_frequency():
    base = torch.randn(64, 4, 32, 32, generator=torch.Generator().manual_seed(0))

    def lag1(x):  # neighbouring-pixel correlation: 0 for white noise
        a, b = x[..., :, :-1].flatten(), x[..., :, 1:].flatten()
        return torch.corrcoef(torch.stack([a, b]))[0, 1].item()

    out = pyramid_noise(base, 6, 0.8, torch.Generator().manual_seed(1))
    assert out.std().item() == pytest.approx(1.0, abs=1e-3)
    assert abs(lag1(base)) < 0.03 and lag1(out) > 0.3
    again = pyramid_noise(base, 6, 0.8, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_input_perturbation_noises_the_input_but_not_the_target():
    sched = _ddpm()
    latents = torch.randn(8, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(8, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.full((8,), 600)
    seen = {}

    def echo_noise(noisy, ts):  # predicts the unperturbed noise exactly
        seen["noisy"] = noisy
        return noise

    loss = diffusion_loss(echo_noise, latents, sched, Objective("epsilon", input_perturbation=0.3),
                          torch.Generator().manual_seed(2), noise=noise, timesteps=t)
    assert loss.item() == 0.0  # the target is still `noise`
    a = sched.alphas_cumprod[600]
    used = (seen["noisy"] - a.sqrt() * latents) / (1 - a).sqrt()
    assert (used - noise).std().item() == pytest.approx(0.3, rel=0.05)
    assert perturbation(noise, 0.0, torch.Generator()) is noise


def test_l1_and_huber_follow_their_formulas():
    pred = torch.tensor([0.0, 0.0, 0.0, 0.0])
    target = torch.tensor([1e-3, -0.05, 2.0, -10.0])
    assert torch.equal(elementwise_loss(pred, target, "l1"), target.abs())
    assert torch.equal(elementwise_loss(pred, target, "mse"), target**2)
    c = 0.1
    huber = elementwise_loss(pred, target, "huber", c)
    assert torch.allclose(huber, 2 * c * (torch.sqrt(target**2 + c**2) - c))
    assert huber[0].item() == pytest.approx(1e-6, rel=1e-3)  # quadratic near zero
    assert huber[3].item() == pytest.approx(2 * c * 10 - 2 * c * c, rel=1e-3)  # linear far out


def test_masked_loss_ignores_what_the_mask_hides():
    target = torch.zeros(2, 4, 8, 8)
    pred = torch.zeros(2, 4, 8, 8)
    pred[:, :, :, 4:] = 3.0  # wrong only on the right half
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, :, :4] = 1.0
    loss = elementwise_loss(pred, target, "mse")
    assert per_example_loss(loss, mask).tolist() == [0.0, 0.0]
    assert per_example_loss(loss).tolist() == [4.5, 4.5]
    mask[1] = 1.0
    half = torch.zeros(1, 1, 8, 8)
    half[..., :, 4:] = 0.5
    assert per_example_loss(loss, mask).tolist() == [0.0, 4.5]
    assert per_example_loss(loss[:1], half).tolist() == [9.0]  # a weighted mean, not shrunk by the mask's area


def test_v_prediction_target_and_zero_terminal_snr():
    sched = training_scheduler(_ddpm("v_prediction"), zero_terminal_snr=True, prediction="v_prediction")
    assert sched.alphas_cumprod[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert compute_snr(sched, torch.tensor([999])).item() == 0.0
    assert _ddpm().alphas_cumprod[-1].item() > 1e-3  # the standard schedule leaves signal at the end
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([999, 300])
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    v = a.sqrt() * noise - (1 - a).sqrt() * latents
    assert torch.allclose(v[0], -latents[0], atol=1e-6)  # at zero SNR, v is the negated image
    loss = diffusion_loss(lambda noisy, ts: v, latents, sched, Objective("v_prediction", min_snr_gamma=5.0),
                          torch.Generator(), noise=noise, timesteps=t)
    assert loss.item() == pytest.approx(0.0, abs=1e-10)
    w = min_snr_weights(compute_snr(sched, t), 5.0, "v_prediction")
    assert w[0].item() == 0.0 and math.isfinite(w[1].item())
    assert min_snr_weights(compute_snr(sched, t), 5.0, "epsilon")[0].item() == 1.0  # limit, not 0/0
    with pytest.raises(ConfigError, match="needs a v-prediction model"):
        training_scheduler(_ddpm(), zero_terminal_snr=True, prediction="epsilon")


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_v_prediction_run_with_every_objective_option(tiny_sd2v, image_folder, tmp_path):
    cfg = tiny_config(tiny_sd2v, image_folder, tmp_path,
                      schedule={"max_steps": 3, "batch_size": 2, "noise_offset": 0.05, "pyramid_noise_iterations": 4,
                                "input_perturbation": 0.1, "zero_terminal_snr": True},
                      optimizer={"min_snr_gamma": 5.0, "loss": "huber", "huber_c": 0.2},
                      sampling={"prompts": ("photo",), "steps": 2})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    assert [e for e in events if isinstance(e, Sample)]
    with safe_open(events[-1].outputs[-1], "pt") as fh:
        meta = fh.metadata()
    assert meta["ss_v_parameterization"] == "True" and meta["modelspec.prediction_type"] == "v"
    assert meta["ss_zero_terminal_snr"] == "True" and meta["ss_min_snr_gamma"] == "5.0"
    assert meta["ss_noise_offset"] == "0.05" and meta["ss_multires_noise_iterations"] == "4"
    assert meta["ss_loss_type"] == "huber" and meta["ss_ip_noise_gamma"] == "0.1"


def test_zero_terminal_snr_on_an_epsilon_model_is_refused(tiny_sd1, image_folder, tmp_path):
    events = list(run_training(tiny_config(tiny_sd1, image_folder, tmp_path, schedule={"zero_terminal_snr": True})))
    assert len(events) == 1 and isinstance(events[0], Failed) and "v-prediction" in events[0].error
