"""Checking every image before training: what is broken (excluded) and what is merely unusual (converted).

A trainer that meets a truncated JPEG on step 900 should not be how a user learns about it. Each file is
read once, hashed (exact duplicates) and decoded fully (a truncated file only fails at the end). Files
training converts (CMYK, 16-bit, alpha, EXIF rotation, small) are reported but not excluded, so the report
says what will happen to them. Pillow releases the GIL while decoding, so a thread pool checks in parallel;
results are cached per folder, so re-opening thousands of images does not decode them all again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import threading
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from studio.dataset.images import MAX_PIXELS
from studio.dataset.scan import ImageRecord, Problem
from studio.dataset.thumbnails import default_cache_root
from studio.errors import StudioError
from studio.file_sample import content_sample
from studio.fileio import WriteError, atomic_write_text
from studio.safe_read import kind_of, read_capped

EXCLUDED_KINDS = frozenset({"empty", "not-image", "unreadable", "too-large", "duplicate", "missing"})
CACHE_VERSION = 2  # 2: entries carry a content sample (studio.file_sample); size and mtime alone were trusted
#: a training image is at most tens of megabytes; a file of gigabytes is refused unread rather than loaded whole
MAX_IMAGE_BYTES = 512 * 2**20
#: the per-folder cache file: thousands of entries of a few hundred bytes
MAX_CACHE_BYTES = 64 * 2**20

_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


@dataclass(frozen=True)
class ImageCheck:
    """What one file turned out to be. `digest` is empty when the file could not be read at all."""

    path: Path
    size: int
    mtime_ns: int
    width: int = 0
    height: int = 0
    mode: str = ""
    digest: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def excluded(self) -> bool:
        return any(p.excluded for p in self.problems)


@dataclass(frozen=True)
class CheckReport:
    checks: tuple[ImageCheck, ...]
    problems: tuple[Problem, ...]  # every file's problems plus duplicates, in path order
    cached: int = 0  # how many results came from the cache

    @property
    def excluded_paths(self) -> frozenset[Path]:
        return frozenset(p.path for p in self.problems if p.excluded)


def _problem(path: Path, kind: str, message: str) -> Problem:
    return Problem(path=path, kind=kind, message=message, excluded=kind in EXCLUDED_KINDS)


def check_image(path: str | Path, *, min_size: int = 0) -> ImageCheck:
    """Read and fully decode one file; never raises for a bad file (that is what it reports)."""
    path = Path(path)
    facts: dict = {"size": -1, "mtime_ns": 0}  # what is known of the file so far

    def bad(kind: str, message: str) -> ImageCheck:
        return ImageCheck(path, **facts, problems=(_problem(path, kind, message),))

    try:
        st = path.stat()  # always fresh: the mode decides whether opening it is safe at all
        if not stat.S_ISREG(st.st_mode):  # a FIFO named .png blocks on open, a device never ends
            return bad("not-image", f"{kind_of(st.st_mode)}, not an image file")
        facts.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        if st.st_size > MAX_IMAGE_BYTES:
            return bad("too-large", f"too large ({st.st_size:,} bytes; images up to {MAX_IMAGE_BYTES:,} "
                                    "bytes are read)")
        with open(path, "rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        facts.update(size=-1, mtime_ns=0)
        return bad("missing", f"cannot read the file ({exc.strerror})")
    if not data:
        return bad("empty", "empty file (0 bytes)")
    facts["digest"] = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height, mode = img.width, img.height, img.mode
            if width * height > MAX_PIXELS:
                facts.update(width=width, height=height, mode=mode)
                return bad("too-large", f"too large ({width}×{height} pixels); not decoded, as a guard "
                                        "against decompression bombs")
            try:
                orientation = int(img.getexif().get(0x0112, 1) or 1)
            except Exception:  # a damaged EXIF block is not worth refusing the image for
                orientation = 1
            has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency"
                                                                       in img.info)
            img.load()
    except UnidentifiedImageError:
        return bad("not-image", "not an image, or a format that cannot be read (despite the "
                                f"{path.suffix} extension)")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return bad("too-large", "too large to decode safely (decompression-bomb guard)")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return bad("unreadable", f"unreadable or truncated ({exc})")
    problems: list[Problem] = []
    if mode == "CMYK":
        problems.append(_problem(path, "cmyk", "CMYK colour: converted to RGB for training"))
    elif mode in _SIXTEEN_BIT or _png_bit_depth(data) == 16:
        problems.append(_problem(path, "16-bit", f"16-bit image ({mode}): scaled to 8-bit RGB for training"))
    elif mode not in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"):
        problems.append(_problem(path, "mode", f"colour mode {mode}: converted to RGB for training"))
    if has_alpha:
        problems.append(_problem(path, "alpha", "has transparency: composited on white for training"))
    if orientation not in (0, 1):
        problems.append(_problem(path, "rotated", f"EXIF orientation {orientation}: rotated upright for training"))
    if min_size and min(width, height) < min_size:
        problems.append(_problem(path, "small", f"{width}×{height} is smaller than the training resolution "
                                                f"({min_size}): it will be upscaled and look soft"))
    return ImageCheck(path, **facts, width=width, height=height, mode=mode, problems=tuple(problems))


def _png_bit_depth(data: bytes) -> int:
    """Pillow opens 16-bit RGB PNGs as 8-bit RGB; the IHDR chunk still says what the file holds."""
    return data[24] if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[12:16] == b"IHDR" else 0


def mark_duplicates(checks: Sequence[ImageCheck], prefer: frozenset[Path] | set[Path] = frozenset()) -> list[Problem]:
    """Files whose bytes equal another's are duplicates; one of each set stays: the first (in the given
    order) of those in `prefer` — the captioned ones, which carry the user's work — else the first."""
    groups: dict[str, list[ImageCheck]] = {}
    for c in checks:
        if c.digest and not c.excluded:
            groups.setdefault(c.digest, []).append(c)
    out: list[Problem] = []
    for group in groups.values():
        keep = next((c for c in group if c.path in prefer), group[0])
        out.extend(_problem(c.path, "duplicate", f"an exact copy of {keep.path.name}") for c in group if c is not keep)
    return out


def _cache_file(cache_dir: Path, folder: Path, min_size: int) -> Path:
    key = hashlib.sha1(f"{folder.resolve()}|{min_size}".encode()).hexdigest()[:24]
    return cache_dir / f"{key}.json"


def _load_cache(file: Path) -> dict[str, dict]:
    try:
        raw = json.loads(read_capped(file, "check cache", limit=MAX_CACHE_BYTES).decode("utf-8"))
    except (StudioError, ValueError, RecursionError):
        return {}  # a missing or damaged cache is only slower
    if not isinstance(raw, dict) or raw.get("version") != CACHE_VERSION or not isinstance(raw.get("entries"), dict):
        return {}
    # an entry that is not an object (a list, null, a number) is as good as missing
    return {k: v for k, v in raw["entries"].items() if isinstance(k, str) and isinstance(v, dict)}


def _from_cache(rec: ImageRecord, entry: dict | None) -> ImageCheck | None:
    if entry is None or rec.size < 0:
        return None
    path = rec.path
    try:
        # same size and timestamp is not the same file (`cp -p`, a restore): the head and tail must match too
        if ((entry["size"], entry["mtime_ns"]) != (rec.size, rec.mtime_ns)
                or entry.get("sample") != content_sample(path)):
            return None
        problems = tuple(Problem(path, p["kind"], p["message"], bool(p["excluded"])) for p in entry["problems"])
        return ImageCheck(path, rec.size, rec.mtime_ns, entry["width"], entry["height"], entry["mode"],
                          entry["digest"], problems)
    except (KeyError, TypeError, ValueError, OSError):
        return None


def _to_cache(check: ImageCheck) -> dict:
    try:
        sample = content_sample(check.path)
    except OSError:
        sample = ""
    return {"size": check.size, "mtime_ns": check.mtime_ns, "sample": sample, "width": check.width,
            "height": check.height, "mode": check.mode, "digest": check.digest,
            "problems": [{k: v for k, v in asdict(p).items() if k != "path"} for p in check.problems]}


@dataclass
class CheckProgress:
    """Thread-safe counter the UI polls; `cancel()` stops the run between files."""

    total: int = 0
    done: int = 0
    cancelled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def step(self) -> None:
        with self._lock:
            self.done += 1

    def cancel(self) -> None:
        self.cancelled = True


def check_images(records: Iterable[ImageRecord], *, min_size: int = 0, workers: int | None = None,
                 cache_dir: Path | None = None, progress: CheckProgress | None = None) -> CheckReport:
    """Check every record (in parallel), using and refreshing the per-folder cache; duplicates found last.
    A cancelled run returns what was checked so far."""
    records = list(records)
    progress = progress or CheckProgress()
    progress.total = len(records)
    cache_dir = cache_dir or default_cache_root() / "checks"
    by_folder: dict[Path, list[ImageRecord]] = {}
    for rec in records:
        by_folder.setdefault(rec.path.parent, []).append(rec)
    caches = {folder: _load_cache(_cache_file(cache_dir, folder, min_size)) for folder in by_folder}

    results: dict[Path, ImageCheck] = {r.path: hit for r in records
                                       if (hit := _from_cache(r, caches[r.path.parent].get(r.path.name)))}
    todo = [r for r in records if r.path not in results]
    cached = len(records) - len(todo)
    progress.done += cached

    def work(rec: ImageRecord) -> ImageCheck | None:
        if progress.cancelled:
            return None
        result = check_image(rec.path, min_size=min_size)
        progress.step()
        return result

    if todo:
        n = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="check") as pool:
            results.update((r.path, r) for r in pool.map(work, todo) if r is not None)

    ordered = [results[r.path] for r in records if r.path in results]
    if todo:
        for folder, recs in by_folder.items():
            entries = {r.path.name: _to_cache(results[r.path]) for r in recs if r.path in results
                       and results[r.path].size >= 0}
            old = caches[folder]
            if entries and entries != {k: old.get(k) for k in entries}:
                with contextlib.suppress(WriteError):  # an unwritable cache dir only costs time
                    atomic_write_text(_cache_file(cache_dir, folder, min_size),
                                      json.dumps({"version": CACHE_VERSION, "folder": str(folder),
                                                  "entries": {**old, **entries}}))
    problems = [p for c in ordered for p in c.problems]
    problems += mark_duplicates(ordered, prefer={r.path for r in records if r.has_caption_file})
    order = {r.path: i for i, r in enumerate(records)}
    problems.sort(key=lambda p: (order.get(p.path, -1), not p.excluded))
    return CheckReport(checks=tuple(ordered), problems=tuple(problems), cached=cached)
