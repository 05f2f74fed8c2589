"""Thumbnails for the dataset grid, and their on-disk cache.

Opening a folder of 10,000 photos must not decode 10,000 full-size images every time. A thumbnail is made
once and stored as a small JPEG in the user's cache directory under a key of (path, size, mtime, side): a
file edited in another program gets a new key, so a stale thumbnail is never shown. It is kept as JPEG
bytes: 10,000 of them fit in tens of megabytes, where decoded pixels would not. Thread-safe and Qt-free,
for a pool of threads (Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from studio.dataset.images import MAX_PIXELS, to_rgb
from studio.fileio import WriteError, atomic_write_bytes

CACHE_ENV = "LORA_STUDIO_CACHE_DIR"
APP_NAME = "lora-studio"
THUMB_SIDE = 256  # longest side of a stored thumbnail; the largest zoom level of the grid
JPEG_QUALITY = 82


def default_cache_root() -> Path:
    """The platform's cache dir (e.g. `~/.cache/lora-studio`), or `$LORA_STUDIO_CACHE_DIR` (tests, portable)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def make_thumbnail(path: str | Path, max_side: int = THUMB_SIDE) -> Image.Image:
    """An upright 8-bit RGB image whose longest side is at most `max_side`. Raises OSError/ValueError when
    the file cannot be decoded (the caller shows a placeholder; the check reports why)."""
    with Image.open(path) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError(f"{img.width}×{img.height} pixels is too large to decode safely")
        if img.format == "JPEG":
            # decode at the smallest DCT scale that still covers the thumbnail (up to 8x less work)
            img.draft("RGB", (max_side, max_side))
        img.load()
        out = to_rgb(img)  # rotation, CMYK, 16-bit and alpha handled as training handles them
    out.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return out


@dataclass(frozen=True)
class Thumbnail:
    data: bytes = b""
    width: int = 0  # 0 when read back from the cache
    height: int = 0
    cached: bool = False  # came from the disk cache
    error: str = ""


class ThumbnailCache:
    """Thumbnails stored as `<root>/thumbs/<ab>/<key>.jpg`; `root=None` is the user's cache directory."""

    def __init__(self, root: str | Path | None = None, max_side: int = THUMB_SIDE) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self._dir = os.fspath(self.root / "thumbs")
        self.max_side = max_side

    def _file(self, path: Path, size: int, mtime_ns: int) -> str:
        text = f"{os.path.abspath(path)}\0{size}\0{mtime_ns}\0{self.max_side}"
        key = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self._dir, key[:2], key + ".jpg")  # strings: this runs 10,000 times on open

    def get(self, path: str | Path, size: int = -1, mtime_ns: int = 0) -> Thumbnail:
        """From the cache when fresh, else made and stored. Never raises for a bad image."""
        path = Path(path)
        if size < 0:
            try:
                st = path.stat()
            except OSError as exc:
                return Thumbnail(error=f"cannot read the file ({exc.strerror})")
            size, mtime_ns = st.st_size, st.st_mtime_ns
        file = self._file(path, size, mtime_ns)
        with contextlib.suppress(OSError), open(file, "rb") as fh:
            data = fh.read()
            if data[:2] == b"\xff\xd8":  # size left unknown (0): parsing it for 10,000 files costs more than it says
                return Thumbnail(data=data, cached=True)
        try:
            img = make_thumbnail(path, self.max_side)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a crash
            return Thumbnail(error=str(exc) or type(exc).__name__)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
        data = buf.getvalue()
        with contextlib.suppress(WriteError):  # an unwritable cache only costs time next time
            atomic_write_bytes(file, data, durable=False)
        return Thumbnail(data=data, width=img.width, height=img.height)
