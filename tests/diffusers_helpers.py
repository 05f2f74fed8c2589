"""The tiny SD 1.x pipeline, a fixed-seed render of it, and loading a LoRA into it the way users do with
every message diffusers gives kept for the test to read.

A key diffusers cannot place is only ever a logged warning (or a Python warning from peft), never an
exception, so "zero unmatched keys" can only be asserted on the collected messages.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

LIBRARIES = ("diffusers", "peft", "transformers")


def sd_pipeline(model: Path):
    """`StableDiffusionPipeline` from a diffusers folder, offline, without the safety checker or progress bars."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe) -> torch.Tensor:
    """One fixed-seed 64-px image (3 steps), enough to see whether a LoRA changed the output."""
    gen = torch.Generator().manual_seed(7)
    return pipe(prompt="photo, thing 1, red", num_inference_steps=3, height=64, width=64, generator=gen,
                output_type="pt", guidance_scale=5.0).images[0]


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_lora_collecting_messages(pipe, path: str | Path, *, level: int = logging.WARNING, **kwargs) -> list[str]:
    """`pipe.load_lora_weights(path, **kwargs)`; returns the log records (at `level` and above) of diffusers,
    peft and transformers, then the Python warnings raised meanwhile."""
    handler = _Collect(level)
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pipe.load_lora_weights(str(path), **kwargs)
    finally:
        for lg, lvl in zip(loggers, old):
            lg.removeHandler(handler)
            lg.setLevel(lvl)
    return handler.messages + [str(w.message) for w in caught]
