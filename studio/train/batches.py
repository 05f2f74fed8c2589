"""From prepared examples to batches: an epoch's order is a pure function of (seed, epoch), and every
per-use random choice (flip, caption changes) is seeded by (seed, epoch, position), so resumes are exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from studio.train.captions import augment_caption
from studio.train.data import Example, PreparedDataset


@dataclass
class Batch:
    latents: torch.Tensor  # b × 4 × h/8 × w/8
    captions: list[str]
    original_sizes: list[tuple[int, int]]
    crops: list[tuple[int, int]]
    target_size: tuple[int, int]
    weights: torch.Tensor  # b: per-example loss weight (prior preservation, per-folder weight)
    masks: torch.Tensor | None = None  # b × 1 × h/8 × w/8
    flipped: list[bool] = field(default_factory=list)


def epoch_chunks(dataset: PreparedDataset, chunk_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches of up to `chunk_size` indices, one bucket each: every training example `repeats`
    times and as many regularisation examples (cycled), shuffled, split per bucket, the batches shuffled."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    pool = [i for i, r in enumerate(dataset.repeats) for _ in range(r)]
    perm = torch.randperm(len(pool), generator=gen).tolist()
    order = [pool[p] for p in perm]
    reg = dataset.reg_indices
    if reg and order:
        cycled = reg * math.ceil(len(order) / len(reg))
        pick = torch.randperm(len(cycled), generator=gen).tolist()[:len(order)]
        merged = order + [cycled[p] for p in pick]
        order = [merged[p] for p in torch.randperm(len(merged), generator=gen).tolist()]
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for i in order:
        by_bucket.setdefault(dataset.examples[i].target_size, []).append(i)
    chunks = [lst[k:k + chunk_size] for lst in by_bucket.values() for k in range(0, len(lst), chunk_size)]
    if len(by_bucket) > 1:
        chunks = [chunks[p] for p in torch.randperm(len(chunks), generator=gen).tolist()]
    return chunks


def batches(dataset: PreparedDataset, batch_size: int, seed: int, *, start_epoch: int = 0,
            start_index: int = 0) -> Iterator[tuple[int, int, list[int]]]:
    """Endless (epoch, next index, example indices) batches, resumable from (epoch, examples into it)."""
    epoch, index = start_epoch, start_index
    while True:
        pos = 0
        for chunk in epoch_chunks(dataset, batch_size, seed, epoch):
            pos += len(chunk)
            if pos <= index:
                continue
            yield epoch, pos, chunk
        epoch, index = epoch + 1, 0


def batch_rng(seed: int, epoch: int, index: int, rank: int = 0) -> random.Random:
    """The generator for a batch's flips and caption changes: a function of its place in the run."""
    return random.Random(f"{seed}/{epoch}/{index}/{rank}")


def steps_per_epoch(dataset: PreparedDataset, batch_size: int, accumulation: int) -> int:
    chunks = len(epoch_chunks(dataset, batch_size, 0, 0))
    return max(1, math.ceil(chunks / accumulation))


def collate(dataset: PreparedDataset, indices: Sequence[int], rng: random.Random | None = None) -> Batch:
    """Stack examples into a batch, drawing each one's flip and caption from `rng` (None: as they are)."""
    rows = []
    for i in indices:
        ex = dataset.examples[i]
        st = dataset.folders[ex.folder]
        flip = rng is not None and ex.flipped is not None and rng.random() < 0.5
        caption = augment_caption(ex.caption, st.captions, rng) if rng is not None else ex.caption
        mask = torch.flip(ex.mask, dims=[-1]) if ex.mask is not None and flip else ex.mask
        rows.append((ex.flipped if flip else ex.latents, caption, ex.original_size,
                     ex.flipped_crop_top_left if flip else ex.crop_top_left, st.loss_weight, mask, flip))
    return _batch(dataset.examples[indices[0]].target_size, rows)


def collate_examples(examples: Sequence[Example]) -> Batch:
    """A batch of examples as they are (validation: no flip, no caption changes, weight 1)."""
    rows = [(e.latents, e.caption, e.original_size, e.crop_top_left, 1.0, e.mask, False) for e in examples]
    return _batch(examples[0].target_size, rows)


def _batch(target: tuple[int, int], rows: list[tuple]) -> Batch:
    """One batch of (latents, caption, original size, crop, weight, mask, flipped) rows."""
    latents, captions, sizes, crops, weights, masks, flips = (list(column) for column in zip(*rows))
    stacked_masks = None
    if any(m is not None for m in masks):
        shape = next(m for m in masks if m is not None).shape
        stacked_masks = torch.stack([m if m is not None else torch.ones(shape) for m in masks])
    return Batch(latents=torch.stack(latents), captions=captions, original_sizes=sizes, crops=crops,
                 target_size=target, weights=torch.tensor(weights, dtype=torch.float32), masks=stacked_masks,
                 flipped=flips)
