"""Finding training images in folders, with their captions and kohya repeat counts.

A folder named `10_name` is repeated 10 times per epoch (sd-scripts' convention, which every kohya
dataset on the internet uses). A caption is the `.txt` beside the image with the same stem.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from studio.dataset.images import IMAGE_EXTENSIONS
from studio.textfile import decode_caption

if TYPE_CHECKING:
    from studio.dataset.state import DatasetState

_REPEAT_FOLDER = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    caption: str
    repeats: int
    folder: Path
    has_caption_file: bool = True
    size: int = -1  # bytes and modification time from the scan: the thumbnail and check caches key on them
    mtime_ns: int = 0
    crop: tuple[float, float, float, float] | None = None  # the user's crop box, fractions of the image
    focus: tuple[float, float] | None = None  # the user's focus point for the training crop, fractions


@dataclass(frozen=True)
class Problem:
    path: Path
    kind: str  # e.g. "unreadable", "empty", "not-image", "small", "duplicate", "cmyk", …
    message: str
    excluded: bool = True  # excluded from training (False: usable, converted or merely odd)


@dataclass(frozen=True)
class DatasetScan:
    images: tuple[ImageRecord, ...]
    problems: tuple[Problem, ...] = ()


def repeats_for_folder(folder: Path, default: int = 1) -> tuple[int, str]:
    """(repeats, concept name) from a folder name like `10_cat`; other names get `default`."""
    m = _REPEAT_FOLDER.match(folder.name)
    if m and int(m.group(1)) > 0:
        return int(m.group(1)), m.group(2)
    return default, folder.name


def read_caption(image: Path, extension: str = ".txt") -> str | None:
    """The stripped caption beside `image`, or None when it has none (or it cannot be read)."""
    return _read_sidecar(image.with_suffix(extension))


def _image_entries(folder: Path) -> tuple[list[os.DirEntry], set[str]]:
    """Image entries of `folder`, sorted by name, and the set of all file names (to find sidecars without
    a failed `open` per image). One `scandir` pass, and string work only: at 10,000 images a `stat` or a
    `Path` per candidate adds up."""
    images: list[os.DirEntry] = []
    names: set[str] = set()
    with os.scandir(folder) as it:
        for entry in it:
            name = entry.name
            if name[0] == ".":
                continue
            try:
                if not entry.is_file():
                    continue
            except OSError:
                continue
            names.add(name)
            dot = name.rfind(".")
            if dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS:
                images.append(entry)
    images.sort(key=lambda e: e.name)
    return images, names


def _read_sidecar(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return decode_caption(data)  # as the caption editor reads it: BOM dropped, line breaks between tags


def _records(folder: Path, entries: list[os.DirEntry], names: set[str], repeats: int, caption_extension: str,
             default_caption: str) -> list[ImageRecord]:
    base = os.fspath(folder)
    out: list[ImageRecord] = []
    for entry in entries:
        name = entry.name
        side = name[:name.rfind(".")] + caption_extension
        caption = _read_sidecar(os.path.join(base, side)) if side in names else None
        try:
            st = entry.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, 0
        out.append(ImageRecord(path=Path(entry.path), caption=caption if caption is not None else default_caption,
                               repeats=repeats, folder=folder, has_caption_file=caption is not None,
                               size=size, mtime_ns=mtime))
    return out


def scan_folder(folder: Path, *, repeats: int, caption_extension: str = ".txt",
                default_caption: str = "") -> list[ImageRecord]:
    """The images directly inside `folder` (not its subfolders), with captions, size and mtime."""
    entries, names = _image_entries(folder)
    return _records(folder, entries, names, repeats, caption_extension, default_caption)


def dataset_folders(root: Path, default_repeats: int = 1) -> list[tuple[Path, int]]:
    try:
        with os.scandir(root) as it:
            subs = sorted(root / e.name for e in it if _REPEAT_FOLDER.match(e.name) and e.is_dir())
    except OSError:
        subs = []
    return [(folder, repeats_for_folder(folder, default_repeats)[0]) for folder in [root, *subs]]


def scan_folders(folders: Sequence[str | Path], *, caption_extension: str = ".txt", default_caption: str = "",
                 default_repeats: int = 1, state: DatasetState | None = None) -> DatasetScan:
    """List the images of `folders` (and of their kohya `N_name` subfolders), without decoding them. With
    `state` (the project's `dataset.json`), excluded images are left out, per-folder repeat overrides apply,
    and crop boxes and focus points are attached."""
    pieces = list(iter_scan(folders, caption_extension=caption_extension, default_caption=default_caption,
                            default_repeats=default_repeats, state=state, chunk=sys.maxsize,
                            max_chunk=sys.maxsize))
    return DatasetScan(images=tuple(r for records, _ in pieces for r in records),
                       problems=tuple(p for _, found in pieces for p in found))


def _apply_state(records: list[ImageRecord], real_folder: Path, state: DatasetState) -> list[ImageRecord]:
    out = []
    for rec in records:
        key = real_folder / rec.path.name
        if key in state.excluded:
            continue
        crop, focus = state.crops.get(key), state.focus.get(key)
        out.append(replace(rec, crop=crop, focus=focus) if crop or focus else rec)
    return out


def iter_scan(folders: Sequence[str | Path], *, caption_extension: str = ".txt", default_caption: str = "",
              default_repeats: int = 1, state: DatasetState | None = None, chunk: int = 256,
              max_chunk: int = 4096) -> Iterator[tuple[list[ImageRecord], list[Problem]]]:
    """`scan_folders` in pieces, for a grid that fills while the disk is read. The first piece holds
    `chunk` images (enough for a first screen); each later one is twice the size, up to `max_chunk`, so
    a 10,000-image folder arrives in a handful of insertions instead of forty."""
    size = chunk
    for raw in folders:
        root = Path(raw).expanduser()
        if not root.is_dir():
            yield [], [Problem(root, "missing", f"{root}: folder not found")]
            continue
        for folder, repeats in dataset_folders(root, default_repeats):
            real = folder.resolve() if state is not None else folder
            repeats = state.repeats.get(real, repeats) if state is not None else repeats
            try:
                entries, names = _image_entries(folder)
            except OSError as exc:
                yield [], [Problem(folder, "unreadable", f"{folder}: cannot list the folder ({exc})")]
                continue
            start = 0
            while start < len(entries):
                part = entries[start:start + size]
                start += len(part)
                records = _records(folder, part, names, repeats, caption_extension, default_caption)
                yield (records if state is None else _apply_state(records, real, state)), []
                size = min(max_chunk, size * 2)
