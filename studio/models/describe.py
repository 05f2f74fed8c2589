"""Short texts about base models for the model picker: sizes, one-line summaries, problems, skipped files.

Kept apart from `detect` (and from Qt) so the words the picker shows can be tested without a window, and so
the GUI can import them at start-up while detection itself runs on a pool thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from studio.errors import StudioError
from studio.models.detect import ModelInfo, SkippedFile

_FAMILY = {"sd1": "SD 1.x", "sd2": "SD 2.x 512", "sd2-v": "SD 2.x 768-v", "sdxl": "SDXL"}
_LAYOUT = {"single-file": "single file", "diffusers": "diffusers folder"}
_UNITS = ("kB", "MB", "GB", "TB")


def format_size(n_bytes: int) -> str:
    """Decimal units (1 GB = 10⁹ bytes), as the model hubs list them, so sizes match the download page."""
    if n_bytes < 1000:
        return f"{n_bytes} B"
    value = float(n_bytes)
    for unit in _UNITS:
        value /= 1000
        if value < 999.95:
            break
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def family_text(info: ModelInfo) -> str:
    text = _FAMILY.get(info.family, info.family)
    if info.prediction == "v_prediction" and info.family in ("sd1", "sdxl"):
        text += " v-pred"
    return text


def layout_text(info: ModelInfo) -> str:
    return _LAYOUT.get(info.layout, info.layout)


_SHORT_SOURCE = {"weights": "from the weights", "metadata": "from metadata", "file name": "from the file name",
                 "marker": "from a v_pred marker", "scheduler config": "from the scheduler config",
                 "override": "set in the project", "family": "set in the project", "default": "assumed"}


def prediction_text(info: ModelInfo) -> str:
    """`v-prediction, from the weights` / `epsilon, from metadata` / `epsilon, assumed`: what the UNet predicts
    and how we know, the one thing SD 2.x files (512 and 768-v share every shape) leave open."""
    return f"{info.prediction.replace('_', '-')}, {_SHORT_SOURCE.get(info.prediction_source, info.prediction_source)}"


def summary(info: ModelInfo) -> str:
    parts = [family_text(info), info.precision, format_size(info.size_bytes), layout_text(info)]
    if info.family in ("sd2", "sd2-v") or info.prediction == "v_prediction":
        parts.append(prediction_text(info))
    if info.has_ema:
        parts.append("contains EMA weights" + (" (used)" if info.ema == "ema" else ""))
    return " · ".join(parts)


def details(info: ModelInfo) -> str:
    """Several lines for a tooltip, including where the prediction type came from: when it is only the
    default (an SD 2.x file that says nothing), the user should know it is worth checking."""
    source = {"default": "not stated in the file; epsilon assumed — set Prediction if this is a v-model",
              "metadata": "from the file's metadata", "marker": "from a v_pred marker in the file",
              "file name": "guessed from the file name", "scheduler config": "from the scheduler config",
              "weights": "from the weights (one LayerNorm's spread, as ComfyUI tests it) — set Prediction if wrong",
              "override": "set in the project", "family": "from the family set in the project"}
    lines = [str(info.path),
             f"{family_text(info)}, {info.prediction.replace('_', '-')} "
             f"({source.get(info.prediction_source, info.prediction_source)})",
             f"{info.precision}, {format_size(info.size_bytes)}, {layout_text(info)}"]
    return "\n".join([*lines, *info.notes])


def problem_text(exc: BaseException) -> str:
    if isinstance(exc, StudioError):
        message, hint = str(exc), exc.hint
    else:  # unreadable in a way the detectors did not foresee (permissions, a vanished file)
        message, hint = f"cannot read: {exc or type(exc).__name__}", ""
    return f"{message} — {hint}" if hint else message


def skipped_note(skipped: Sequence[SkippedFile]) -> str:
    return "" if not skipped else f"{len(skipped)} file{'' if len(skipped) == 1 else 's'} skipped"


def skipped_details(skipped: Sequence[SkippedFile], limit: int = 15) -> str:
    lines = [f"{s.path.name}: {s.reason}" for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"… and {len(skipped) - limit} more")
    return "\n".join(lines)


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same place, without touching the disk (safe on the GUI thread)."""
    return _key(a) == _key(b)


def _key(p: str | Path) -> str:
    return os.path.normcase(os.path.abspath(os.path.expanduser(str(p))))


def display_name(path: str | Path, roots: Iterable[str | Path] = ()) -> str:
    """The model's name as listed: its path inside the model folder that holds it (`sdxl/base.safetensors`
    tells a user who sorts models into sub-folders more than `base.safetensors`), else its file name."""
    key = _key(path)
    for root in roots:
        base = _key(root)
        if key.startswith(base.rstrip(os.sep) + os.sep):
            return Path(os.path.relpath(key, base)).as_posix()
    return Path(path).name


def picker_rows(scanned: Iterable[ModelInfo], current: ModelInfo | None) -> list[ModelInfo]:
    rows = list(scanned)
    if current is not None and not any(same_path(m.path, current.path) for m in rows):
        rows.insert(0, current)
    return rows
