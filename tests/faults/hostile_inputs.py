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


def hostile_paths(folder: Path, name: str = "thing") -> Iterator[tuple[str, Path]]:
    """(label, path) for each kind of path that is not a readable regular file, made under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "mkfifo"):
        fifo = folder / f"{name}.fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        yield "fifo", fifo
    if Path("/dev/zero").exists():
        yield "device /dev/zero", Path("/dev/zero")
    huge = folder / f"{name}.huge"
    if not huge.exists():
        with open(huge, "wb") as fh:
            fh.truncate(HUGE_SIZE)
    yield "huge sparse file", huge
    sub = folder / f"{name}.dir"
    sub.mkdir(exist_ok=True)
    yield "folder", sub
    if sys.platform != "win32":
        loop = folder / f"{name}.loop"
        if not os.path.lexists(loop):
            os.symlink(loop, loop)
        yield "symlink loop", loop
        dangling = folder / f"{name}.dangling"
        if not os.path.lexists(dangling):
            os.symlink(folder / "nowhere", dangling)
        yield "dangling symlink", dangling


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
