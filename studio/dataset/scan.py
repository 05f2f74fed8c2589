"""Finding training images in folders, with their captions and kohya repeat counts.

A folder named `10_name` is repeated 10 times per epoch (sd-scripts' convention, which every kohya
dataset on the internet uses). A caption is the `.txt` beside the image with the same stem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.dataset.images import is_image_path

_REPEAT_FOLDER = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    caption: str
    repeats: int
    folder: Path
    has_caption_file: bool = True


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

    @property
    def num_repeated(self) -> int:
        return sum(r.repeats for r in self.images)


def repeats_for_folder(folder: Path, default: int = 1) -> tuple[int, str]:
    """(repeats, concept name) from a folder name like `10_cat`; other names get `default`."""
    m = _REPEAT_FOLDER.match(folder.name)
    if m and int(m.group(1)) > 0:
        return int(m.group(1)), m.group(2)
    return default, folder.name


def read_caption(image: Path, extension: str = ".txt") -> str | None:
    sidecar = image.with_suffix(extension)
    try:
        return sidecar.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return sidecar.read_text(encoding="latin-1").strip()


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def scan_folders(folders: Sequence[str | Path], *, caption_extension: str = ".txt", default_caption: str = "",
                 default_repeats: int = 1) -> DatasetScan:
    """List the images of `folders` (and of their kohya `N_name` subfolders), without decoding them.

    Decoding problems are found by `studio.dataset.check` or when training loads an image.
    """
    images: list[ImageRecord] = []
    problems: list[Problem] = []
    for raw in folders:
        root = Path(raw).expanduser()
        if not root.is_dir():
            problems.append(Problem(root, "missing", f"{root}: folder not found"))
            continue
        subfolders = sorted(d for d in root.iterdir() if d.is_dir() and _REPEAT_FOLDER.match(d.name))
        for folder in [root, *subfolders]:
            repeats, _ = repeats_for_folder(folder, default_repeats)
            for path in _image_files(folder):
                caption = read_caption(path, caption_extension)
                images.append(ImageRecord(path=path, caption=caption if caption is not None else default_caption,
                                          repeats=repeats, folder=folder, has_caption_file=caption is not None))
    return DatasetScan(images=tuple(images), problems=tuple(problems))
