"""Preview images during training, from fixed prompts and seeds so steps can be compared.

The pipeline is assembled around the very modules being trained (no copy, no reload); the engine's
`_evaluation` switches them to eval mode (and the averaged weights) around it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from studio.config import SamplingConfig
from studio.fileio import atomic_write_with


def build_pipeline(components, unet, text_encoders):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    # as in the mixer (studio.mix.samplers): without `_use_default_values` a single-file model and its
    # diffusers folder get the same Euler timestep spacing, so their previews agree
    config = {k: v for k, v in dict(components.scheduler.config).items() if k != "_use_default_values"}
    # zero terminal SNR: sample from the last (pure-noise) timestep, as Lin et al. prescribe
    spacing = {"timestep_spacing": "trailing"} if config.get("rescale_betas_zero_snr") else {}
    scheduler = EulerDiscreteScheduler.from_config(config, **spacing)
    if components.is_sdxl:
        return StableDiffusionXLPipeline(vae=components.vae, text_encoder=text_encoders[0],
                                         text_encoder_2=text_encoders[1], tokenizer=components.tokenizers[0],
                                         tokenizer_2=components.tokenizers[1], unet=unet, scheduler=scheduler)
    return StableDiffusionPipeline(vae=components.vae, text_encoder=text_encoders[0],
                                   tokenizer=components.tokenizers[0], unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@torch.no_grad()
def render_samples(components, unet, text_encoders, cfg: SamplingConfig, *, resolution: int, step: int,
                   out_dir: Path) -> list[tuple[str, int, Path]]:
    unet, text_encoders = getattr(unet, "module", unet), [getattr(t, "module", t) for t in text_encoders]
    pipe = build_pipeline(components, unet, text_encoders)
    pipe.set_progress_bar_config(disable=True)
    results = []
    for i, prompt in enumerate(cfg.prompts):
        seed = cfg.seed + i
        gen = torch.Generator(device="cpu").manual_seed(seed)
        image = pipe(prompt=prompt, negative_prompt=cfg.negative_prompt or None,
                     num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                     width=cfg.width or resolution, height=cfg.height or resolution, generator=gen).images[0]
        path = out_dir / f"step-{step:07d}-{i}.png"
        atomic_write_with(path, lambda tmp, im=image: im.save(tmp, format="PNG"))
        results.append((prompt, seed, path))
    return results
