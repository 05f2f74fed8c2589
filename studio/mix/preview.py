"""Live preview of a mix: the base model is loaded once (in the worker, `studio.mix.jobs`); each render
patches only the layers whose contributions changed, and samples.

The seed drives a CPU generator, so the same request gives the same image on any device, which is what lets
a baked checkpoint be compared with a preview.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from studio.mix.grid import GridAxis, GridResult, check_axes, compose
from studio.mix.patch import WeightPatcher
from studio.mix.recipe import LoraCache, MixEntry, Source, contributions, load_sources
from studio.mix.request import DEFAULT_SAMPLER, RenderRequest
from studio.mix.samplers import make_scheduler
from studio.mix.targets import check_fits, model_targets


@dataclass
class PreviewSession:
    family: str
    pipe: object
    patcher: WeightPatcher
    scheduler_config: dict
    cache: LoraCache = field(default_factory=LoraCache)
    _schedulers: dict[str, object] = field(default_factory=dict)
    _sources: dict[str, Source] = field(default_factory=dict)

    @classmethod
    def open(cls, base: str | Path, *, device: str | torch.device | None = None,
             dtype: torch.dtype | None = None) -> PreviewSession:
        from studio.models.load import load_components

        dev = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)
        components = load_components(Path(base), dtype=dtype)
        pipe = _assemble(components)
        pipe.to(dev)
        pipe.set_progress_bar_config(disable=True)
        targets = model_targets(components.unet, components.text_encoders, components.family)
        return cls(family=components.family, pipe=pipe, patcher=WeightPatcher(targets),
                   scheduler_config=dict(components.scheduler.config))

    def sources(self, entries: Sequence[MixEntry]) -> list[Source]:
        """Read (cached) and check each LoRA against the model once; a misfit raises, naming file and modules."""
        out = []
        for e in entries:
            lora = self.cache.get(e.path)
            path = str(Path(e.path).expanduser().resolve())
            source = self._sources.get(path)
            if source is None or source.lora is not lora:  # not seen, or the file changed since
                check_fits(lora, Path(e.path).name, self.patcher.targets, self.family)
                source = self._sources[path] = load_sources([e], self.cache)[0]
            out.append(replace(source, entry=e))
        return out

    def apply(self, entries: Sequence[MixEntry]) -> int:
        return self.patcher.apply(contributions(self.sources(entries)))

    def _scheduler(self, sampler: str):
        if sampler not in self._schedulers:
            self._schedulers[sampler] = make_scheduler(sampler, self.scheduler_config)
        return self._schedulers[sampler]

    @torch.no_grad()
    def render(self, request: RenderRequest, *, should_stop: Callable[[], bool] | None = None,
               on_step: Callable[[int, int], None] | None = None):
        """The PIL image, or None when `should_stop` said so; `on_step(done, total)` after each step."""
        request.validate()
        self.apply(request.loras)
        pipe = self.pipe
        pipe.scheduler = self._scheduler(request.sampler)  # type: ignore[attr-defined]

        def step_end(p, step, timestep, kwargs):
            if on_step is not None:
                on_step(step + 1, request.steps)
            if should_stop is not None and should_stop():
                raise _Stopped  # out of the pipeline at once: no remaining steps skipped through, no VAE decode
            return kwargs

        gen = torch.Generator(device="cpu").manual_seed(int(request.seed))
        try:
            result = pipe(prompt=request.prompt, negative_prompt=request.negative or None,  # type: ignore[operator]
                          num_inference_steps=request.steps, guidance_scale=request.guidance,
                          width=request.width, height=request.height, generator=gen,
                          callback_on_step_end=step_end if should_stop is not None or on_step else None)
        except _Stopped:
            return None
        return result.images[0]

    def render_grid(self, request: RenderRequest, x: GridAxis, y: GridAxis | None = None, *,
                    should_stop: Callable[[], bool] | None = None,
                    on_cell: Callable[[int, int], None] | None = None) -> GridResult | None:
        """Every combination of x (and y) strengths, same prompt and seed; a labelled sheet plus the cells."""
        check_axes(x, y, len(request.loras))
        labels = [Path(e.path).stem for e in request.loras]
        x = replace(x, label=x.label or labels[x.lora])
        y = replace(y, label=y.label or labels[y.lora]) if y else None
        combos = [(xv, yv) for yv in (y.values if y else (None,)) for xv in x.values]
        cells = []
        for i, (xv, yv) in enumerate(combos):
            req = request.with_strength(x.lora, xv)
            if y is not None and yv is not None:
                req = req.with_strength(y.lora, yv)
            image = self.render(req, should_stop=should_stop)
            if image is None:
                return None
            cells.append(((xv,) if yv is None else (xv, yv), image))
            if on_cell:
                on_cell(i + 1, len(combos))
        return GridResult(image=compose([c for _, c in cells], x, y), cells=cells)

    def close(self) -> None:
        """Put the base weights back (the session can still be used; nothing stays patched)."""
        self.patcher.restore()


class _Stopped(Exception):
    """Raised from the step callback when the job is cancelled (a Cancel must end a render within ~2 s)."""


def _assemble(components):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = make_scheduler(DEFAULT_SAMPLER, components.scheduler.config)
    for m in (components.unet, components.vae, *components.text_encoders):
        m.eval().requires_grad_(False)
    if components.family == "sdxl":
        return StableDiffusionXLPipeline(vae=components.vae, text_encoder=components.text_encoders[0],
                                         text_encoder_2=components.text_encoders[1],
                                         tokenizer=components.tokenizers[0], tokenizer_2=components.tokenizers[1],
                                         unet=components.unet, scheduler=scheduler)
    return StableDiffusionPipeline(vae=components.vae, text_encoder=components.text_encoders[0],
                                   tokenizer=components.tokenizers[0], unet=components.unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
