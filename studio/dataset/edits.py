"""Undoable caption edits: each edit records the old and new caption of every file it touched.

Applying an edit in either direction writes the sidecars through a `CaptionStore`, so undo really restores
the files on disk, not just the text on screen; a sidecar changed by another program in between is left
alone and reported back as reloaded. The Qt panel wraps each edit in a `QUndoCommand`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from studio.dataset.captions import CaptionStore, WriteResult
from studio.dataset.tags import TagOp
from studio.errors import StudioError

PARALLEL_WRITES = 32  # above this many files, writes (each with its fsync) go through a small thread pool


@dataclass(frozen=True)
class Change:
    image: Path
    old: str | None  # None: the image had no sidecar
    new: str | None


@dataclass(frozen=True)
class CaptionEdit:
    description: str
    changes: tuple[Change, ...]

    def __len__(self) -> int:
        return len(self.changes)

    def only(self, images: Iterable[Path]) -> CaptionEdit:
        keep = set(images)
        return CaptionEdit(self.description, tuple(c for c in self.changes if c.image in keep))


@dataclass(frozen=True)
class ApplyResult:
    """`written`: files now holding the edit's text. `reloaded`: files that had changed on disk, with the
    text found there — the caller shows that text; the edit did not touch them."""

    written: tuple[Path, ...] = ()
    reloaded: dict[Path, str | None] = field(default_factory=dict)
    captions: dict[Path, str | None] = field(default_factory=dict)  # every touched image's caption now


def plan_edit(description: str, changes: Mapping[Path, tuple[str | None, str | None]]) -> CaptionEdit:
    """An edit from {image: (old, new)}, leaving out images whose caption does not change. Giving an image
    without a sidecar an empty caption is not a change (no empty files appear)."""
    out = []
    for image, pair in changes.items():
        old, new = (None if text is None else text.strip() for text in pair)
        if old != new and not (old is None and new == ""):
            out.append(Change(Path(image), old, new))
    return CaptionEdit(description, tuple(out))


def plan_batch(captions: Mapping[Path, str | None], op: TagOp,
               frequencies: Counter[str] | None = None) -> CaptionEdit:
    changes = {image: (old, op.apply(old, frequencies)) for image, old in captions.items()}
    edit = plan_edit(op.describe(), changes)
    n = len(edit)
    return CaptionEdit(f"{edit.description} ({n} image{'s' if n != 1 else ''})", edit.changes)


class PartialEditError(StudioError):
    """Some files of an edit could not be written (a full or read-only disk); `result` holds the ones that were,
    so the caller can still undo them."""

    def __init__(self, message: str, result: ApplyResult, hint: str = "") -> None:
        super().__init__(message, hint)
        self.result = result


def apply_edit(store: CaptionStore, edit: CaptionEdit, *, undo: bool = False) -> ApplyResult:
    """Write the edit's new captions (or, with `undo`, its old ones) where the disk still holds the other side.

    A write that fails does not stop the others; afterwards PartialEditError reports the failures and carries
    the result of the writes that succeeded (already on disk, so they must stay undoable)."""

    def one(change: Change) -> tuple[Change, WriteResult | StudioError]:
        target, expected = (change.old, change.new) if undo else (change.new, change.old)
        try:
            return change, store.write(change.image, target, expected=expected)
        except StudioError as exc:
            return change, exc

    if len(edit.changes) > PARALLEL_WRITES:
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="captions") as pool:
            results = list(pool.map(one, edit.changes))
    else:
        results = [one(c) for c in edit.changes]
    failed = [res for _, res in results if isinstance(res, StudioError)]
    done = [(change.image, res) for change, res in results if not isinstance(res, StudioError)]
    result = ApplyResult(tuple(image for image, res in done if res.written),
                         {image: res.current for image, res in done if not res.written},
                         {image: res.current for image, res in done})
    if failed:
        raise PartialEditError(f"{len(failed)} of {len(results)} captions could not be saved: {failed[0]}", result,
                               hint=failed[0].hint or "the other captions were saved; undo restores them")
    return result

