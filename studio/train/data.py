"""Turning a dataset into training examples: decoded images → VAE latents, captions → token ids.

The VAE is frozen, so each image is encoded once before the loop (sd-scripts' `cache_latents`), which
removes the most expensive non-trainable work from every step. The order of examples is a pure
function of (seed, epoch), so a resumed run sees exactly the batches the interrupted run would have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from studio.config import DatasetConfig
from studio.dataset.images import ImageProblem, load_training_image
from studio.dataset.scan import ImageRecord, scan_folders
from studio.errors import DatasetError


@dataclass(frozen=True)
class Example:
    latents: torch.Tensor  # 4 × h/8 × w/8, already multiplied by the VAE scaling factor
    caption: str
    original_size: tuple[int, int]  # (height, width) for SDXL size conditioning
    crop_top_left: tuple[int, int]


@dataclass(frozen=True)
class PreparedDataset:
    examples: tuple[Example, ...]
    repeats: tuple[int, ...]  # per example
    skipped: tuple[str, ...]  # messages for images that could not be used
    tag_frequency: dict[str, dict[str, int]]
    dataset_dirs: dict[str, dict[str, int]]

    @property
    def epoch_length(self) -> int:
        return sum(self.repeats)


def collect_images(cfg: DatasetConfig, resolve: Callable[[str], object]) -> tuple[list[ImageRecord], list[str]]:
    """The dataset's image records, or a DatasetError that says what is wrong with the folders."""
    if not cfg.folders:
        raise DatasetError("no dataset folder is set", hint="add a folder of images ([dataset] folders, or --data)")
    folders = [resolve(f) for f in cfg.folders]
    scan = scan_folders(folders, caption_extension=cfg.caption_extension, default_caption=cfg.default_caption,
                        default_repeats=cfg.repeats)
    missing = [p.message for p in scan.problems if p.kind == "missing"]
    if missing and len(missing) == len(folders):
        raise DatasetError("; ".join(missing), hint="check the dataset folder path")
    if not scan.images:
        where = ", ".join(str(f) for f in folders)
        raise DatasetError(f"no images found in {where}",
                           hint="add .png/.jpg/.webp images (captions go in .txt files beside them)")
    return list(scan.images), [p.message for p in scan.problems]


def _tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",") if t.strip()]


def _to_tensor(img) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@torch.no_grad()
def prepare_dataset(records: list[ImageRecord], resolution: int, vae, *, device: torch.device, dtype: torch.dtype,
                    seed: int, on_skip: Callable[[str], None] | None = None,
                    progress: Callable[[int, int], None] | None = None, batch_size: int = 4) -> PreparedDataset:
    """Decode, resize and VAE-encode every usable image once; unreadable images are skipped by name."""
    images, kept, skipped = [], [], []
    for rec in records:
        try:
            with_size = load_training_image(rec.path, resolution, resolution)
        except ImageProblem as exc:
            skipped.append(str(exc))
            if on_skip:
                on_skip(str(exc))
            continue
        images.append(with_size)
        kept.append(rec)
    if not kept:
        raise DatasetError("none of the images could be read: " + "; ".join(skipped[:5])
                           + (" …" if len(skipped) > 5 else ""),
                           hint="the folder must contain valid .png/.jpg/.webp images")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    latents: list[torch.Tensor] = []
    scaling = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    for start in range(0, len(images), batch_size):
        batch = torch.stack([_to_tensor(im) for im in images[start:start + batch_size]])
        dist = vae.encode(batch.to(device=device, dtype=dtype)).latent_dist
        noise = torch.randn(dist.mean.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dist.mean.dtype)
        sample = dist.mean + dist.std * noise
        latents.extend(((sample - shift) * scaling).float().cpu())
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    examples, freq, dirs = [], {}, {}
    for rec, lat in zip(kept, latents):
        examples.append(Example(latents=lat, caption=rec.caption, original_size=(resolution, resolution),
                                crop_top_left=(0, 0)))
        folder = rec.folder.name
        counts = freq.setdefault(folder, {})
        for tag in _tags(rec.caption):
            counts[tag] = counts.get(tag, 0) + 1
        info = dirs.setdefault(folder, {"n_repeats": rec.repeats, "img_count": 0})
        info["img_count"] += 1
    return PreparedDataset(examples=tuple(examples), repeats=tuple(r.repeats for r in kept), skipped=tuple(skipped),
                           tag_frequency=freq, dataset_dirs=dirs)


def epoch_order(repeats: tuple[int, ...], seed: int, epoch: int) -> list[int]:
    """Indices of one epoch (each example `repeats` times), shuffled by (seed, epoch) alone."""
    pool = [i for i, r in enumerate(repeats) for _ in range(r)]
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(pool), generator=gen).tolist()
    return [pool[p] for p in perm]


def batches(dataset: PreparedDataset, batch_size: int, seed: int, *, start_epoch: int = 0,
            start_index: int = 0) -> Iterator[tuple[int, int, list[int]]]:
    """Endless (epoch, next index, example indices) batches; resumable from (epoch, index)."""
    epoch, index = start_epoch, start_index
    while True:
        order = epoch_order(dataset.repeats, seed, epoch)
        while index < len(order):
            chunk = order[index:index + batch_size]
            index += len(chunk)
            yield epoch, index, chunk
        epoch, index = epoch + 1, 0


def steps_per_epoch(dataset: PreparedDataset, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(dataset.epoch_length / batch_size / accumulation))
