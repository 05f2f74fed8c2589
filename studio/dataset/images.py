"""Reading images for training: decoding, EXIF rotation, RGB, the user's crop box and focus point.

Every way an image file can be wrong becomes an `ImageProblem` naming the file and the reason, so a bad
file is skipped and reported rather than ending a run half-way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

# Pillow's own guard is a warning at 89 Mpx and an error at twice that; we refuse anything over it.
MAX_PIXELS = 178_956_970


class ImageProblem(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def open_checked(path: str | Path) -> Image.Image:
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageProblem(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise ImageProblem(path, f"too large ({img.width}×{img.height} pixels); refusing to decode")
            img.load()
    except UnidentifiedImageError:
        raise ImageProblem(path, "not an image, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem(path, "too large to decode safely (decompression-bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(path, f"unreadable or truncated ({exc})") from None
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """EXIF-rotate and convert any mode (CMYK, 16-bit, palette, alpha) to 8-bit RGB; transparent areas are
    composited on white, which is what a person sees in an image viewer."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype("uint8"), "L")
    if img.mode in ("P", "RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def user_region(size: tuple[int, int], crop: tuple[float, float, float, float] | None,
                focus: tuple[float, float] | None) -> tuple[tuple[int, int, int, int] | None,
                                                            tuple[float, float] | None]:
    """(the crop box in pixels of an image of `size`, or None; the focus point as fractions of that region),
    computed once so everything cut from one image (pixels, bucket, mask, SDXL's conditioning) agrees.
    `crop` (left, top, right, bottom) and `focus` are fractions of the whole image, as the panel draws both;
    an empty box is ignored rather than giving a 0-pixel image, a focus outside it is clamped to its edge."""
    if crop is None:
        return None, focus
    width, height = size
    left, top, right, bottom = (round(min(max(float(v), 0.0), 1.0) * side) for v, side in zip(crop, size * 2))
    if right - left < 1 or bottom - top < 1:
        return None, focus
    if focus is None:
        return (left, top, right, bottom), None
    fx = (focus[0] * width - left) / (right - left)
    fy = (focus[1] * height - top) / (bottom - top)
    return (left, top, right, bottom), (min(max(fx, 0.0), 1.0), min(max(fy, 0.0), 1.0))

