"""Importing copies of images into a project (what dropped paths are: `studio.dataset.drop_kinds`).

Folders are referenced in place (the user's originals stay where they are). Importing a copy is for
images that should live with the project: each image is copied with its caption sidecar, and a name
that is already taken gets a numbered suffix rather than overwriting another image.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from studio.dataset.images import is_image_path
from studio.dataset.scan import dataset_folders
from studio.fileio import atomic_path
from studio.safe_names import safe_file_name, unique_file_name


def _free_name(dest: Path, name: str, taken: set[str], caption_extension: str) -> str:
    """A name valid on every system, taken neither in this import (`a.png` and `A.PNG` count as one) nor in `dest`,
    whose caption sidecar is free too: `cat.jpg` beside an existing `cat.png` would otherwise get its `cat.txt`."""
    safe = safe_file_name(name)
    stem, suffix = Path(safe).stem, Path(safe).suffix
    candidate, n = unique_file_name(safe, taken, dest), 1
    while unique_file_name(side := Path(candidate).stem + caption_extension, taken, dest) != safe_file_name(
            side):
        n += 1
        candidate = unique_file_name(f"{stem}-{n}{suffix}", taken, dest)
    taken.update((candidate, Path(candidate).stem + caption_extension))
    return candidate


def import_copies(images: Iterable[Path], dest: Path, caption_extension: str = ".txt") -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    out = []
    for src in images:
        src = Path(src)
        target = dest / _free_name(dest, src.name, taken, caption_extension)
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
        shutil.copystat(src, target, follow_symlinks=True)
        sidecar = src.with_suffix(caption_extension)
        if sidecar.is_file():
            with atomic_path(target.with_suffix(caption_extension)) as tmp:
                shutil.copyfile(sidecar, tmp)
        out.append(target)
    return out


def import_folder(folder: Path, dest_parent: Path, caption_extension: str = ".txt") -> Path:
    target = dest_parent / unique_file_name(folder.name, (), dest_parent)
    for sub, _ in dataset_folders(folder):
        images = sorted(p for p in sub.iterdir() if p.is_file() and is_image_path(p))
        import_copies(images, target if sub == folder else target / safe_file_name(sub.name), caption_extension)
    target.mkdir(parents=True, exist_ok=True)
    return target
