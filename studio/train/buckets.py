"""Aspect-ratio buckets: train each image at a size close to its own shape instead of a cropped square
(which cuts the heads off portraits, and the model learns the crop).

Buckets (NovelAI's scheme, as sd-scripts implements it) are width × height pairs of about the training
resolution's area, sides in multiples of a step; each image goes to the bucket of the closest aspect ratio,
is scaled to cover it and cropped around the centre or the user's focus point. With `no_upscale` an image
is never enlarged (sd-scripts' `bucket_no_upscale`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from studio.config import DatasetConfig
from studio.errors import ConfigError


@dataclass(frozen=True)
class BucketSpec:
    resolution: int  # target area is resolution²
    min_side: int
    max_side: int
    step: int
    no_upscale: bool
    enabled: bool = True


def bucket_spec(cfg: DatasetConfig) -> BucketSpec:
    """The bucket settings of a dataset config, with the 0 = automatic sides resolved, or a ConfigError."""
    res, step = cfg.resolution, cfg.bucket_step
    if not cfg.bucketing:
        return BucketSpec(res, res, res, step, False, enabled=False)
    if step % 8:
        raise ConfigError(f"[dataset] bucket_step is {step}; it must be a multiple of 8 (the VAE works on 8×8 "
                          "pixel blocks)", hint="use 64, the usual bucket step")
    min_side = cfg.bucket_min_side or max(step, (res // 2) // step * step)
    max_side = cfg.bucket_max_side or res * 2
    if min_side > res or max_side < res:
        raise ConfigError(f"[dataset] bucket sides {min_side}-{max_side} px do not include the resolution ({res} px)",
                          hint="set bucket_min_side at most, and bucket_max_side at least, the resolution")
    return BucketSpec(res, min_side, max_side, step, cfg.bucket_no_upscale)


def make_buckets(spec: BucketSpec) -> list[tuple[int, int]]:
    """(width, height) pairs of at most resolution² pixels, sides multiples of `step` within [min, max]: per
    width the tallest height that fits (sd-scripts' `make_bucket_resolutions`), the square, all transposed."""
    if not spec.enabled:
        return [(spec.resolution, spec.resolution)]
    area, step = spec.resolution * spec.resolution, spec.step
    side = int(math.sqrt(area)) // step * step
    found = {(side, side)}
    for width in range(spec.min_side, spec.max_side + 1, step):
        height = min(spec.max_side, int(area // width) // step * step)
        if height >= spec.min_side:
            found |= {(width, height), (height, width)}
    return sorted(found)


def choose_bucket(width: int, height: int, spec: BucketSpec, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket of the closest aspect ratio (as logarithms: 2:1 and 1:2 are as far from square), ties going
    to the larger; with `no_upscale` the image's own size rounded down. ValueError: too small for any."""
    if not spec.enabled:
        return spec.resolution, spec.resolution
    if spec.no_upscale:
        area = spec.resolution * spec.resolution
        scale = min(1.0, math.sqrt(area / (width * height)), spec.max_side / max(width, height))
        bw = int(width * scale) // spec.step * spec.step
        bh = int(height * scale) // spec.step * spec.step
        if bw < spec.step or bh < spec.step:
            raise ValueError(f"{width}×{height} pixels does not fill a bucket of at least {spec.step} px a side "
                             f"(at most {spec.max_side} px) without enlarging it, which bucket_no_upscale forbids")
        return bw, bh
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def crop_offset(scaled: tuple[int, int], width: int, height: int,
                focus: tuple[float, float] | None = None) -> tuple[int, int]:
    """(top, left) of the width × height window in an image scaled to `scaled`: centred (half the excess,
    floored, as sd-scripts) or on the focus point, clamped inside; image, mask and SDXL crop ids share it."""
    new_w, new_h = scaled
    if focus is None:
        return (new_h - height) // 2, (new_w - width) // 2
    left = min(max(round(focus[0] * new_w - width / 2), 0), new_w - width)
    top = min(max(round(focus[1] * new_h - height / 2), 0), new_h - height)
    return top, left


def fit_to_bucket(img: Image.Image, width: int, height: int, focus: tuple[float, float] | None = None,
                  region: tuple[int, int, int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Cut `img` to `region` (the user's crop box in pixels, if any), scale it to cover width × height and crop
    it around `focus` (fractions of the region; default the centre); returns the crop and its (top, left)
    offset in the scaled image — the `crops_coords_top_left` SDXL is conditioned on."""
    if region is not None:
        img = img.crop(region)
    new_w, new_h = scaled_size(img.width, img.height, width, height)
    top, left = crop_offset((new_w, new_h), width, height, focus)
    if new_w * new_h > 4 * width * height:
        # an extreme aspect ratio (a 50000×1 strip): scaling all of it would take gigabytes for one bucket,
        # so resample only the source region the crop keeps (the same pixels)
        sx, sy = img.width / new_w, img.height / new_h
        box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
        return img.resize((width, height), Image.Resampling.LANCZOS, box=box), (top, left)
    if (new_w, new_h) != img.size:
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
    return img.crop((left, top, left + width, top + height)), (top, left)


def mirrored_crop(crop_top_left: tuple[int, int], scaled_width: int, width: int) -> tuple[int, int]:
    """The crop offset of the mirrored image: the same window seen from the other side."""
    top, left = crop_top_left
    return top, scaled_width - left - width


def scaled_size(img_width: int, img_height: int, width: int, height: int) -> tuple[int, int]:
    scale = max(width / img_width, height / img_height)
    return max(width, round(img_width * scale)), max(height, round(img_height * scale))
