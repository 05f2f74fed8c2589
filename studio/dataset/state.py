"""Per-image choices that are not captions: exclude flags, crop boxes, focus points, per-folder repeats.

They live in `<project>/dataset.json`, not beside the images, because the images are referenced in place
and may be shared between projects: excluding a photo from one LoRA must not hide it from another. Paths
inside the project are stored relative to it, so a project can be moved. A damaged file is an error the
UI reports, never a silent reset of the user's choices.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.errors import DatasetError
from studio.fileio import atomic_write_text
from studio.safe_read import read_capped

STATE_FILE = "dataset.json"
STATE_VERSION = 1
#: the most repeats per epoch one folder may have (the bound of [dataset] repeats; see `check_repeats`)
MAX_REPEATS = 1000
#: dataset.json holds a few entries per image: tens of megabytes is already a dataset of a million images
MAX_STATE_BYTES = 64 * 2**20
_DAMAGED_HINT = "fix or delete the file; it holds exclude flags and crop/focus choices"

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class DatasetState:
    """Absolute, resolved paths → the user's choices. Immutable: every change returns a new state."""

    excluded: frozenset[Path] = frozenset()
    crops: dict[Path, Box] = field(default_factory=dict)
    focus: dict[Path, Point] = field(default_factory=dict)
    repeats: dict[Path, int] = field(default_factory=dict)  # folder → repeats, overriding its `N_` prefix

    def with_excluded(self, paths: list[Path] | tuple[Path, ...], excluded: bool) -> DatasetState:
        keys = {Path(p) for p in paths}
        return replace(self, excluded=(self.excluded | keys) if excluded else (self.excluded - keys))

    def with_focus(self, path: Path, point: Point | None) -> DatasetState:
        return self._with("focus", path, None if point is None else (_unit(point[0]), _unit(point[1])))

    def with_crop(self, path: Path, box: Box | None) -> DatasetState:
        if box is not None:
            box = tuple(_unit(v) for v in box)  # type: ignore[assignment]
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                raise ValueError("a crop box needs a positive width and height")
        return self._with("crops", path, box)

    def with_repeats(self, folder: Path, repeats: int | None) -> DatasetState:
        if repeats is not None and repeats < 1:
            raise ValueError("repeats must be at least 1")
        return self._with("repeats", folder, None if repeats is None else int(repeats))

    def _with(self, name: str, key: Path, value: object) -> DatasetState:
        values = dict(getattr(self, name))
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
        return replace(self, **{name: values})

def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def _key(path: Path, project_dir: Path) -> str:
    """Relative to the project when inside it (portable), absolute otherwise; always with forward slashes."""
    try:
        return path.relative_to(project_dir).as_posix()
    except ValueError:
        return path.as_posix()


def _path(key: str, project_dir: Path) -> Path:
    p = Path(key)
    return p if p.is_absolute() else Path(os.path.normpath(project_dir / p))


def state_path(project_dir: str | Path) -> Path:
    return Path(project_dir) / STATE_FILE


def load_state(project_dir: str | Path) -> DatasetState:
    project_dir = Path(project_dir).resolve()
    path = state_path(project_dir)
    if not os.path.lexists(path):
        return DatasetState()
    try:
        # a FIFO or a device in its place would hang the read; only a regular file of sane size is read
        data = read_capped(path, "dataset file", limit=MAX_STATE_BYTES, error=DatasetError)
        raw = json.loads(data.decode("utf-8-sig"))  # a BOM, as Notepad saves it, is fine
    except DatasetError as exc:
        raise DatasetError(str(exc), hint=_DAMAGED_HINT) from None
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, bad UTF-8, a 5000-digit number
        raise DatasetError(f"{path} cannot be read ({exc})", hint=_DAMAGED_HINT) from None
    try:
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise ValueError(f"expected an object with \"version\": {STATE_VERSION}")
        excluded = frozenset(_path(k, project_dir) for k in _strings(raw.get("excluded", [])))
        crops = {_path(k, project_dir): _numbers(v, 4) for k, v in _mapping(raw.get("crops", {})).items()}
        focus = {_path(k, project_dir): _numbers(v, 2) for k, v in _mapping(raw.get("focus", {})).items()}
        repeats = {_path(k, project_dir): _count(v) for k, v in _mapping(raw.get("repeats", {})).items()}
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is not a valid dataset file: {exc}", hint=_DAMAGED_HINT) from None
    return DatasetState(excluded=excluded, crops=crops, focus=focus, repeats=repeats)  # type: ignore[arg-type]


def save_state(state: DatasetState, project_dir: str | Path) -> Path:
    project_dir = Path(project_dir).resolve()
    data: dict = {"version": STATE_VERSION, "excluded": sorted(_key(p, project_dir) for p in state.excluded)}
    for name in ("crops", "focus", "repeats"):  # boxes and points as lists, repeats as numbers
        data[name] = {_key(p, project_dir): list(v) if isinstance(v, tuple) else v
                      for p, v in sorted(getattr(state, name).items())}
    path = state_path(project_dir)
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("\"excluded\" must be a list of paths")
    return value


def _mapping(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError("\"crops\", \"focus\" and \"repeats\" must be objects keyed by path")
    return value


def _numbers(value: object, n: int) -> tuple[float, ...]:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"expected a list of {n} numbers, got {value!r}")
    return tuple(_unit(v) for v in value)


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPEATS:
        raise ValueError(f"repeats must be a whole number from 1 to {MAX_REPEATS}, got {str(value)[:40]}")
    return value
