"""A held-out validation loss, and a note when it turns upward.

The training loss of a diffusion model is mostly noise (new timesteps and noise every step). The
validation loss removes all randomness, so two evaluations differ only because the weights did. When it
rises `patience` times in a row, the LoRA is likely memorising its images; the note names the lowest step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from studio.config import SamplingConfig
from studio.dataset.images import is_image_path
from studio.dataset.scan import ImageRecord, read_caption, scan_folders
from studio.errors import DatasetError
from studio.train.batches import Batch, collate_examples
from studio.train.data import Example


def split_validation(records: list[ImageRecord], cfg: SamplingConfig, resolve: Callable[[str], Path], *,
                     seed: int, caption_extension: str = ".txt",
                     default_caption: str = "") -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(training records, validation records). Explicit validation images are taken out of the training set
    wherever they appear; otherwise `validation_percent` of the images (at least one), chosen by the seed."""
    if cfg.validation_images:
        chosen: list[ImageRecord] = []
        for raw in cfg.validation_images:
            path = Path(resolve(raw))
            if path.is_dir():
                chosen.extend(scan_folders([path], caption_extension=caption_extension,
                                           default_caption=default_caption).images)
            elif path.is_file() and is_image_path(path):
                caption = read_caption(path, caption_extension)
                chosen.append(ImageRecord(path=path, caption=default_caption if caption is None else caption,
                                          repeats=1, folder=path.parent, has_caption_file=caption is not None))
            else:
                raise DatasetError(f"validation image not found: {path}",
                                   hint="check [sampling] validation_images")
        held = {r.path.resolve() for r in chosen}
        train = [r for r in records if r.path.resolve() not in held]
        if not train:
            raise DatasetError("every training image is also a validation image",
                               hint="choose validation images outside the training folders")
        return train, chosen
    if cfg.validation_percent <= 0:
        return records, []
    k = max(1, round(len(records) * cfg.validation_percent / 100))
    if len(records) - k < 1:
        raise DatasetError(f"{len(records)} image(s) are too few to hold {k} out for validation",
                           hint="add images or set [sampling] validation_percent = 0")
    picked = set(random.Random(seed).sample(range(len(records)), k))
    return ([r for i, r in enumerate(records) if i not in picked], [r for i, r in enumerate(records) if i in picked])


def fixed_timesteps(num_train_timesteps: int, count: int) -> list[int]:
    return [int((k + 0.5) * num_train_timesteps / count) for k in range(count)]


@torch.no_grad()
def validation_loss(examples: Sequence[Example], loss_fn: Callable[[Batch, torch.Tensor, torch.Tensor], torch.Tensor],
                    *, num_train_timesteps: int, count: int, seed: int) -> float:
    """Mean loss over the examples, each at the same `count` timesteps with noise fixed by (seed, example)."""
    timesteps = torch.tensor(fixed_timesteps(num_train_timesteps, count))
    total = 0.0
    for j, example in enumerate(examples):
        batch = collate_examples([example] * count)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + j)
        noise = torch.randn(batch.latents.shape, generator=gen, dtype=torch.float32)
        total += float(loss_fn(batch, timesteps, noise))
    return total / max(1, len(examples))


@dataclass
class ValidationTrend:
    """Watches validation losses; `add` returns a note once per rise of `patience` evaluations in a row."""

    patience: int = 2
    best: float | None = None
    best_step: int = 0
    previous: float | None = None
    rising: int = 0
    warned: bool = False

    def add(self, step: int, loss: float) -> str | None:
        note = None
        self.rising = self.rising + 1 if self.previous is not None and loss > self.previous else 0
        if self.best is None or loss < self.best:
            self.best, self.best_step, self.warned = loss, step, False
        elif self.rising >= self.patience and not self.warned:
            self.warned = True
            note = (f"the validation loss has risen {self.rising} times in a row ({loss:.5f} at step {step}; lowest "
                    f"{self.best:.5f} at step {self.best_step}): the LoRA may be starting to overfit, and the save "
                    f"nearest step {self.best_step} may be the one to keep")
        self.previous = loss
        return note
