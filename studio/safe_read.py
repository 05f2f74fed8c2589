"""Reading the files we are pointed at without hanging or running out of memory.

A path from a project, a command line or a state file can name a named pipe (opening it blocks for ever),
a device such as `/dev/zero` (reading never ends), a symlink loop, a folder or a file of many gigabytes.
Every small file we read whole goes through `read_capped`: `stat` first, then at most `limit` bytes.
`regular_file` and `existing_folder` are the same checks for paths that a library opens itself.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from studio.errors import StudioError

_ELOOP = getattr(errno, "ELOOP", -1)  # POSIX; Windows reports a link loop differently (then: "cannot read it")
#: project files, state files, model configs: real ones are a few kilobytes
SMALL_FILE_LIMIT = 16 * 2**20


_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """What a file-system entry is, in words (for messages that say why it cannot be used)."""
    return next((kind for test, kind in _KINDS if test(mode)), "neither a file nor a folder")


def stat_path(path: Path, what: str, error: type[StudioError], hint: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise error(f"{what} {path} is a symbolic link to a file that does not exist", hint=hint) from None
        raise error(f"{what} not found: {path}", hint=hint) from None
    except OSError as exc:
        if exc.errno == _ELOOP:
            raise error(f"{what} {path} is a symbolic link that loops back on itself", hint=hint) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise error(f"{what} {path}: the path is too long", hint=hint) from None
        raise error(f"{what} {path}: cannot read it ({exc.strerror})", hint=hint) from None
    except ValueError:  # an embedded NUL
        raise error(f"{what} {path!r}: the path holds a NUL character", hint=hint) from None


def regular_file(path: str | Path, what: str, *, error: type[StudioError] = StudioError, hint: str = "",
                 limit: int | None = None) -> os.stat_result:
    """Stat `path` and insist on a regular file (no more than `limit` bytes); the error names `what` and why."""
    path = Path(path)
    st = stat_path(path, what, error, hint)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is {kind_of(st.st_mode)}, not a file", hint=hint)
    if limit is not None and st.st_size > limit:
        raise error(f"{what} {path} is {st.st_size:,} bytes, more than a file like this can be "
                    f"({limit:,} bytes at most)", hint=hint)
    return st


def describe(path: str | Path) -> str:
    """What `path` is, in words, without following it into trouble: a file, a folder, a FIFO, a device, a
    symbolic link that loops or leads nowhere, or missing."""
    try:
        return kind_of(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno == _ELOOP:
            return "a symbolic link that loops back on itself"
        if os.path.islink(path):
            return "a symbolic link to something that does not exist"
        return "missing"
    except ValueError:
        return "not a valid path"


def existing_folder(path: str | Path, what: str, *, error: type[StudioError] = StudioError,
                    hint: str = "") -> os.stat_result:
    path = Path(path)
    st = stat_path(path, what, error, hint)
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {path} is {kind_of(st.st_mode)}, not a folder", hint=hint)
    return st


def read_capped(path: str | Path, what: str, *, limit: int = SMALL_FILE_LIMIT,
                error: type[StudioError] = StudioError, hint: str = "") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (it may grow while read: only `limit` are taken)."""
    path = Path(path)
    regular_file(path, what, error=error, hint=hint, limit=limit)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {path}: cannot read it ({exc.strerror})", hint=hint) from None
    if len(data) > limit:
        raise error(f"{what} {path} is more than {limit:,} bytes, more than a file like this can be", hint=hint)
    return data
