"""Training honours the Dataset panel's crop box and focus point (`dataset.json`).

A stand-in VAE whose "latent" is the image averaged over 8×8 blocks (no noise) makes the pixels training
used visible in the prepared examples, so these tests need no model and run in well under a second.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from studio.config import DatasetConfig
from studio.dataset.images import user_region
from studio.dataset.scan import ImageRecord
from studio.dataset.state import DatasetState, save_state
from studio.train.buckets import crop_offset, fit_to_bucket
from studio.train.data import collect_images, prepare_dataset
from studio.file_sample import content_sample
from studio.train.latent_cache import FORMAT, CacheKey, LatentCache

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


class _Dist:
    def __init__(self, mean: torch.Tensor) -> None:
        self.mean = mean
        self.std = torch.zeros_like(mean)


class PixelVAE:
    """Encodes an image as its 8×8 block means (RGB, plus a zero channel): the latent shows the pixels."""

    config = SimpleNamespace(scaling_factor=1.0, shift_factor=None)

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, pixels: torch.Tensor) -> SimpleNamespace:
        self.encoded += pixels.shape[0]
        mean = F.avg_pool2d(pixels, 8)
        return SimpleNamespace(latent_dist=_Dist(torch.cat([mean, torch.zeros_like(mean[:, :1])], 1)))


def _colours(latents: torch.Tensor) -> np.ndarray:
    """h/8 × w/8 × 3 colours in 0..255 from a PixelVAE latent."""
    return ((latents[:3].permute(1, 2, 0).numpy() + 1.0) * 127.5).round()


def _is(latents: torch.Tensor, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(_colours(latents) - np.array(colour)).max() < 2)


def _quadrants(path: Path, w: int = 128, h: int = 128) -> Path:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    arr = np.zeros((h, w, 3), dtype="uint8")
    arr[:h // 2, :w // 2], arr[:h // 2, w // 2:] = RED, GREEN
    arr[h // 2:, :w // 2], arr[h // 2:, w // 2:] = BLUE, WHITE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _halves(path: Path, w: int = 256, h: int = 64) -> Path:
    """Left half red, right half blue."""
    arr = np.zeros((h, w, 3), dtype="uint8")
    arr[:, :w // 2], arr[:, w // 2:] = RED, BLUE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _records(tmp_path: Path, state: DatasetState, **dataset) -> tuple[list[ImageRecord], DatasetConfig]:
    """The records training would use, through dataset.json as the panel writes it."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    save_state(state, project)
    cfg = DatasetConfig(folders=(str(tmp_path / "data"),), **dataset)
    records, _ = collect_images(cfg, lambda f: Path(f), project)
    return records, cfg


def _prepare(records, cfg, vae=None, **kw):
    return prepare_dataset(records, cfg, vae or PixelVAE(), device=torch.device("cpu"), dtype=torch.float32,
                           seed=5, **kw)


def _one(tmp_path: Path, state: DatasetState, **dataset):
    records, cfg = _records(tmp_path, state, **dataset)
    ds = _prepare(records, cfg)
    assert len(ds.examples) == 1
    return ds.examples[0]


# --------------------------------------------------------------------------------------------------
# crop box


def test_a_crop_box_trains_only_its_region(tmp_path):
    img = _quadrants(tmp_path / "data" / "q.png").resolve()
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.0, 0.0, 0.5, 0.5)), resolution=64)
    assert _is(ex.latents, RED)
    assert ex.original_size == (64, 64) and ex.crop_top_left == (0, 0) and ex.target_size == (64, 64)
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.5, 0.5, 1.0, 1.0)), resolution=64)
    assert _is(ex.latents, WHITE)
    plain = _one(tmp_path, DatasetState(), resolution=64)  # no crop: all four colours, as before
    assert _is(plain.latents[:, :3, :3], RED) and _is(plain.latents[:, 5:, 5:], WHITE)  # off the resampled edges
    assert plain.original_size == (128, 128)


def test_the_bucket_comes_from_the_crop_box_not_the_whole_image(tmp_path):
    img = _quadrants(tmp_path / "data" / "q.png", 256, 256).resolve()
    opts = dict(resolution=128, bucketing=True, bucket_step=64)
    assert _one(tmp_path, DatasetState(), **opts).target_size == (128, 128)
    # a 256×64 strip across the top (red then green): the widest bucket, every pixel of the strip
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.0, 0.0, 1.0, 0.25)), **opts)
    assert ex.target_size == (64, 256) and ex.original_size == (64, 256) and ex.crop_top_left == (0, 0)
    assert _is(ex.latents[:, :, :16], RED) and _is(ex.latents[:, :, 16:], GREEN)


def test_the_crop_box_is_in_the_upright_image_after_exif_rotation(tmp_path):
    upright = _quadrants(tmp_path / "upright.png", 128, 64)
    raw = Image.open(upright).transpose(Image.Transpose.ROTATE_90)  # stored on its side, 64×128
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": exif_transpose gives the upright picture back
    (tmp_path / "data").mkdir()
    raw.save(tmp_path / "data" / "r.png", exif=exif.tobytes())
    img = (tmp_path / "data" / "r.png").resolve()
    # the right half of the upright 128×64 picture: green over white, 64×64
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.5, 0.0, 1.0, 1.0)), resolution=64)
    assert ex.original_size == (64, 64)
    assert _is(ex.latents[:, :4], GREEN) and _is(ex.latents[:, 4:], WHITE)


# --------------------------------------------------------------------------------------------------
# focus point


def test_a_focus_point_moves_the_window_and_the_crop_conditioning(tmp_path):
    img = _halves(tmp_path / "data" / "w.png").resolve()
    centre = _one(tmp_path, DatasetState(), resolution=64, flip=True)
    assert centre.crop_top_left == (0, 96) and centre.flipped_crop_top_left == (0, 96)
    assert _is(centre.latents[:, :, :4], RED) and _is(centre.latents[:, :, 4:], BLUE)
    right = _one(tmp_path, DatasetState().with_focus(img, (1.0, 0.5)), resolution=64, flip=True)
    assert _is(right.latents, BLUE)
    assert right.crop_top_left == (0, 192)  # clamped: the window ends at the right edge
    assert right.flipped_crop_top_left == (0, 0)  # mirrored, that window is at the left
    assert right.original_size == (64, 256)
    left = _one(tmp_path, DatasetState().with_focus(img, (0.1, 0.5)), resolution=64)
    assert _is(left.latents, RED) and left.crop_top_left == (0, 0)


def test_a_focus_point_is_a_place_in_the_whole_image_even_with_a_crop_box(tmp_path):
    # four 64-px stripes: red, green, blue, white; crop to the right three, focus on the white one
    arr = np.zeros((64, 256, 3), dtype="uint8")
    for i, colour in enumerate((RED, GREEN, BLUE, WHITE)):
        arr[:, i * 64:(i + 1) * 64] = colour
    (tmp_path / "data").mkdir()
    Image.fromarray(arr).save(tmp_path / "data" / "s.png")
    img = (tmp_path / "data" / "s.png").resolve()
    state = DatasetState().with_crop(img, (0.25, 0.0, 1.0, 1.0)).with_focus(img, (0.875, 0.5))
    ex = _one(tmp_path, state, resolution=64)
    assert _is(ex.latents, WHITE) and ex.crop_top_left == (0, 128) and ex.original_size == (64, 192)
    assert user_region((256, 64), (0.25, 0.0, 1.0, 1.0), (0.875, 0.5)) == ((64, 0, 256, 64), (5 / 6, 0.5))


def test_without_focus_the_window_is_the_old_centre():
    for scaled, bucket in (((256, 64), (64, 64)), ((65, 200), (64, 128)), ((64, 64), (64, 64))):
        expected = ((scaled[1] - bucket[1]) // 2, (scaled[0] - bucket[0]) // 2)
        assert crop_offset(scaled, *bucket) == expected
    img = Image.new("RGB", (300, 100))
    _, offset = fit_to_bucket(img, 64, 64)
    assert offset == (0, (192 - 64) // 2)
    _, offset = fit_to_bucket(img, 64, 64, focus=(0.0, 0.0))
    assert offset == (0, 0)


# --------------------------------------------------------------------------------------------------
# masks


def _mask(image: Path, arr: np.ndarray) -> None:
    (image.parent / "masks").mkdir(exist_ok=True)
    Image.fromarray(arr).save(image.parent / "masks" / image.name)


def test_a_mask_is_cut_by_the_same_crop_box(tmp_path):
    img = _quadrants(tmp_path / "data" / "q.png").resolve()
    mask = np.zeros((128, 128), dtype="uint8")
    mask[:64, :64] = 255  # the red quadrant
    _mask(img, mask)
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.0, 0.0, 0.5, 0.5)), resolution=64, masked_loss=True)
    assert ex.mask is not None and torch.equal(ex.mask, torch.ones(1, 8, 8))
    ex = _one(tmp_path, DatasetState().with_crop(img, (0.5, 0.0, 1.0, 0.5)), resolution=64, masked_loss=True)
    assert torch.equal(ex.mask, torch.zeros(1, 8, 8))


def test_a_mask_follows_the_focus_window(tmp_path):
    img = _halves(tmp_path / "data" / "w.png").resolve()
    mask = np.zeros((32, 128), dtype="uint8")  # half the image's size: stretched to it first
    mask[:, 88:] = 255  # the image from x = 176 on (clear of the bilinear edge at the window)
    _mask(img, mask)
    right = _one(tmp_path, DatasetState().with_focus(img, (1.0, 0.5)), resolution=64, masked_loss=True)
    assert torch.equal(right.mask, torch.ones(1, 8, 8))
    centre = _one(tmp_path, DatasetState(), resolution=64, masked_loss=True)
    assert torch.equal(centre.mask, torch.zeros(1, 8, 8))


# --------------------------------------------------------------------------------------------------
# latent cache


def test_the_cache_key_changes_with_the_crop_box_and_the_focus_point(tmp_path):
    img = _quadrants(tmp_path / "q.png")
    base = dict(flip=False, vae="v", seed=1)
    plain = CacheKey.for_image(img, (64, 64), **base)
    cropped = CacheKey.for_image(img, (64, 64), crop=(0.0, 0.0, 0.5, 0.5), **base)
    other = CacheKey.for_image(img, (64, 64), crop=(0.0, 0.0, 0.5, 0.6), **base)
    focused = CacheKey.for_image(img, (64, 64), focus=(0.2, 0.5), **base)
    moved = CacheKey.for_image(img, (64, 64), focus=(0.3, 0.5), **base)
    digests = {k.digest() for k in (plain, cropped, other, focused, moved)}
    assert len(digests) == 5
    assert CacheKey.for_image(img, (64, 64), crop=(0, 0, 0.5, 0.5), **base).digest() == cropped.digest()
    # an image with neither keeps the key it had before crop boxes existed (nothing crop-shaped is appended)
    st = img.stat()
    old = "|".join(str(v) for v in (FORMAT, str(img.resolve()), st.st_mtime_ns, st.st_size, content_sample(img, st),
                                    (64, 64), False, "v", 1))
    assert plain.digest() == hashlib.sha256(old.encode()).hexdigest()[:40]


def test_changing_the_crop_or_focus_encodes_again_instead_of_reusing_the_disk_cache(tmp_path):
    img = _halves(tmp_path / "data" / "w.png").resolve()
    cache = LatentCache(tmp_path / "cache")

    def run(state: DatasetState):
        records, cfg = _records(tmp_path, state, resolution=64)
        vae = PixelVAE()
        ds = _prepare(records, cfg, vae, cache=cache, vae_hash="pixel")
        return ds, vae.encoded

    ds, encoded = run(DatasetState())
    assert (ds.cache_hits, ds.cache_misses, encoded) == (0, 1, 1)
    ds, encoded = run(DatasetState())
    assert (ds.cache_hits, encoded) == (1, 0)
    right = DatasetState().with_focus(img, (1.0, 0.5))
    ds, encoded = run(right)
    assert (ds.cache_hits, encoded) == (0, 1) and _is(ds.examples[0].latents, BLUE)
    ds, encoded = run(right)
    assert (ds.cache_hits, encoded) == (1, 0) and _is(ds.examples[0].latents, BLUE)
    ds, encoded = run(right.with_crop(img, (0.0, 0.0, 0.5, 1.0)))
    assert (ds.cache_hits, encoded) == (0, 1) and _is(ds.examples[0].latents, RED)


@pytest.mark.parametrize("box", [(0.3, 0.3, 0.3, 0.9), (0.0, 0.0, 0.001, 1.0)])
def test_an_empty_crop_box_is_ignored(tmp_path, box):
    _quadrants(tmp_path / "data" / "q.png")
    rec = ImageRecord(path=tmp_path / "data" / "q.png", caption="", repeats=1, folder=tmp_path / "data",
                      crop=box)
    ds = _prepare([rec], DatasetConfig(folders=(str(tmp_path / "data"),), resolution=64))
    assert ds.examples[0].original_size == (128, 128)
