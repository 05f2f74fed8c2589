"""Which files can be base models, and how each is read: the one rule the picker, the file dialog, the Train
panel's pre-start check, the CLI and the worker share.

`.safetensors` and pickled checkpoints (`.ckpt`, `.pt`, `.pth`) alike: a pickle is only ever opened with
torch's weights-only unpickler (`studio.models.safe_load`), so a `.ckpt` is no more dangerous to list, check
or train on than a `.safetensors`. No torch here: the GUI thread builds the file dialog's filter at start-up.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
#: what the picker scans and the dialog offers (`.bin` is left out: on its own it is a diffusers part, not a model)
BASE_MODEL_SUFFIXES = (*SAFETENSORS_SUFFIXES, ".ckpt", ".pt", ".pth")
# the safetensors library refuses headers above 100 MB; a real SDXL checkpoint's is under 300 kB
MAX_HEADER_BYTES = 100 * 1024 * 1024

WeightsKind = Literal["safetensors", "pickle", "unknown"]


def sniff(path: Path) -> WeightsKind:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError:
        return "unknown"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= min(size - 8, MAX_HEADER_BYTES) and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def weights_kind(path: Path) -> WeightsKind:
    """How a weights file is read: by its suffix, else (a renamed file) by its first bytes."""
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return "safetensors"
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    return sniff(path)


def dialog_filter() -> str:
    """The file dialog's name filter for base models (Qt syntax): exactly the files the checks accept."""
    patterns = " ".join(f"*{s}" for s in BASE_MODEL_SUFFIXES)
    return f"Model weights ({patterns});;All files (*)"
