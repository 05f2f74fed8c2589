"""What training should use from a dataset: the scan, less what the user excluded and exact duplicates.

The engine calls `training_scan` instead of a bare `scan_folders` so the choices in `dataset.json` take
effect and duplicated files are not trained twice as often as the user meant. Decoding problems are
caught where each image is loaded, so no full pre-check is needed here.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from studio.dataset.check import ImageCheck, mark_duplicates
from studio.dataset.scan import DatasetScan, ImageRecord, Problem, repeats_for_folder, scan_folders
from studio.dataset.state import MAX_REPEATS, DatasetState, load_state
from studio.errors import DatasetError


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def drop_duplicates(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], list[Problem]]:
    """Keep one of each set of byte-identical files: the first with a caption file, else the first (the
    same choice as the check's report). Only files of equal size are hashed."""
    sizes = Counter(rec.size for rec in records)
    hashed: list[ImageCheck] = []
    for rec in records:
        if rec.size > 0 and sizes[rec.size] > 1:
            with contextlib.suppress(OSError):  # unreadable: loading it will report it
                hashed.append(ImageCheck(rec.path, rec.size, rec.mtime_ns, digest=file_digest(rec.path)))
    found = mark_duplicates(hashed, prefer={r.path for r in records if r.has_caption_file})
    dropped = {p.path: p for p in found}
    return [r for r in records if r.path not in dropped], list(dropped.values())


def check_repeats(records: Sequence[ImageRecord]) -> None:
    """DatasetError naming the first folder whose repeat count (its `N_` prefix or dataset.json) is too large:
    `1000000000_cat` would make an epoch of a billion entries, allocated up front."""
    for rec in records:
        if rec.repeats > MAX_REPEATS:
            raise DatasetError(f"{rec.folder}: {rec.repeats:,} repeats per epoch (from the folder's name or the "
                               f"Dataset panel), at most {MAX_REPEATS} are allowed",
                               hint="rename the folder with a smaller `N_` prefix (e.g. `10_"
                                    f"{repeats_for_folder(rec.folder)[1]}`) or set its repeats in the "
                                    "Dataset panel")


def training_scan(folders: Sequence[str | Path], *, caption_extension: str = ".txt", default_caption: str = "",
                  default_repeats: int = 1, project_dir: str | Path | None = None,
                  state: DatasetState | None = None, duplicates: bool = True) -> DatasetScan:
    """`scan_folders` with the project's `dataset.json` applied and (optionally) duplicates removed.

    A damaged `dataset.json` raises DatasetError: training without the user's exclusions would be wrong.
    """
    if state is None and project_dir is not None:
        state = load_state(project_dir)
    scan = scan_folders(folders, caption_extension=caption_extension, default_caption=default_caption,
                        default_repeats=default_repeats, state=state or DatasetState())
    images, problems = list(scan.images), list(scan.problems)
    check_repeats(images)
    if duplicates:
        images, dups = drop_duplicates(images)
        problems.extend(dups)
    return DatasetScan(images=tuple(images), problems=tuple(problems))
