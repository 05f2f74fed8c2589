"""Generators and checks shared by the hostile-input tests (part 2): odd paths, odd numbers, untouched files.

`hostile_paths` makes every kind of path a user (or a damaged project) can point us at that is not a plain
readable file: a named pipe (opening it blocks for ever), a character device (`/dev/zero`: reading never
ends), a huge sparse file, a folder, a symlink loop, a dangling symlink, a non-UTF-8 name. `hostile_numbers`
is every number that passes a naive `lo <= x <= hi` or `float(x)`: NaN, ±∞, 1e30, 1e308 and a 40-digit
integer. `snapshot` and `clear_message` are what every case then asserts: the user's bytes are the same
and the message is ours (no traceback, no "this is a bug", no library's text).
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

#: text that means the error escaped our handling: the bug path, or a library's own wording
BUG_TEXT = ("this is a bug", "Traceback", "--debug for the traceback", "KeyError", "IndexError", "JSONDecodeError",
            "UnicodeEncodeError", "UnicodeDecodeError", "BrokenPipeError", "AttributeError", "OverflowError",
            "MemoryError", "Invalid beta", "huggingface.co", "not implemented for", "[Errno", "FileNotFoundError",
            "divisible by 8", "GroupNorm")

HUGE_SIZE = 64 * 2**30  # a sparse file claiming 64 GiB: no disk space used


def clear_message(text: str) -> bool:
    """True when `text` is one of our messages: non-empty and without any sign of an escaped exception."""
    return bool(text.strip()) and not any(marker in text for marker in BUG_TEXT)


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file under `root` by relative path → its bytes (non-regular files → their kind), to compare later."""
    out: dict[str, bytes | str] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        mode = p.lstat().st_mode
        if stat.S_ISREG(mode):
            out[rel] = p.read_bytes()
        elif not stat.S_ISDIR(mode):
            out[rel] = f"special {stat.S_IFMT(mode)}"
    return out


#: the kinds of non-file a path can name; `make_hostile` puts one at a given path
HOSTILE_KINDS: tuple[str, ...] = ("fifo", "device", "huge", "folder", "symlink loop", "dangling symlink")


def make_hostile(kind: str, path: Path) -> bool:
    """Put a `kind` at `path` (replacing nothing: `path` must not exist); False where this OS cannot make it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            return False
        os.mkfifo(path)
    elif kind == "device":
        if sys.platform == "win32" or not Path("/dev/zero").exists():
            return False
        os.symlink("/dev/zero", path)  # what the loader sees through the link is the device itself
    elif kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate(HUGE_SIZE)  # sparse: no disk space used
    elif kind == "folder":
        path.mkdir()
    elif kind == "symlink loop":
        if sys.platform == "win32":
            return False
        os.symlink(path, path)
    elif kind == "dangling symlink":
        if sys.platform == "win32":
            return False
        os.symlink(path.parent / f".nowhere-{path.name}", path)
    else:  # pragma: no cover - a typo in a test
        raise ValueError(kind)
    return True


def hostile_paths(folder: Path, name: str = "thing") -> Iterator[tuple[str, Path]]:
    """(kind, path) for each kind of path that is not a readable regular file, made under `folder`."""
    for kind in HOSTILE_KINDS:
        path = folder / f"{name}-{kind.replace(' ', '-')}"
        if os.path.lexists(path) or make_hostile(kind, path):
            yield kind, path


def non_utf8_name(folder: Path, stem: str, suffix: str) -> Path | None:
    """A path whose name is not valid UTF-8 (`\\udcff` via surrogateescape); None where the OS refuses it."""
    if sys.platform in ("win32", "darwin"):
        return None
    path = folder / (stem + "-\udcff\udcfe" + suffix)
    try:
        path.touch()
        path.unlink()
    except (OSError, UnicodeEncodeError):
        return None
    return path


#: floats that pass `float(x)` and, for NaN, every `lo <= x <= hi` check
HOSTILE_FLOATS: tuple[tuple[str, float], ...] = (
    ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("1e30", 1e30), ("-1e30", -1e30),
    ("1e308", 1e308),
)
#: integers far beyond any count (they overflow int64 seeds and allocate without end)
HOSTILE_INTS: tuple[tuple[str, int], ...] = (("1e9", 10**9), ("1e30", 10**30), ("-1", -1), ("2^63", 2**63))


def hostile_numbers() -> Iterator[tuple[str, float | int]]:
    yield from HOSTILE_FLOATS
    yield from HOSTILE_INTS
