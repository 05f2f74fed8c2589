"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target.

A crash, a kill or a full disk at any moment leaves either the old file or the new one, never half of one;
every writer in `studio` goes through here. Only calls that exist on Windows, macOS and Linux are used, or a
fallback is tested with the POSIX-only ones removed (tests/windows_apis.py). Windows refuses to rename over
a file another program holds open (an image viewer, a WebUI with the LoRA loaded, a virus scan), so the
rename is retried for about a second and then reported as "in use", the old file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from studio.errors import StudioError


class WriteError(StudioError):
    """A file could not be written; the previous version, if any, is untouched."""


#: Windows error codes of a rename onto a file that another process has open (access denied, sharing
#: violation, lock violation). A real permission problem gives 5 too; a read-only file is told apart by its mode.
_IN_USE_WINERRORS = frozenset({5, 32, 33})
_TOO_LONG_WINERRORS = frozenset({206})  # ERROR_FILENAME_EXCED_RANGE
#: Pauses between tries of a rename that Windows refused because the target is open: about a second in all,
#: enough for a virus scan or an indexer to let go, short enough not to look hung.
REPLACE_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.25)
_sleep = time.sleep  # the tests count the pauses instead of waiting them out
#: the errors of a write in words; a library's own exception carrying one of these codes is the same failure
_WRITE_FAILURES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                   errno.EROFS: "the disk is read-only", errno.EACCES: "permission denied",
                   errno.EPERM: "permission denied",
                   errno.EFBIG: "the file is larger than this disk or folder allows"}


def _in_use(exc: OSError) -> bool:
    return isinstance(exc, PermissionError) and getattr(exc, "winerror", None) in _IN_USE_WINERRORS


def _read_only(path: Path) -> bool:
    """The file's read-only flag (what Windows' attribute maps to); False when there is no such file."""
    try:
        return not path.stat().st_mode & stat.S_IWRITE
    except OSError:
        return False


def _read_only_error(path: Path, verb: str) -> WriteError:
    return WriteError(f"cannot {verb} {path}: the file is read-only",
                      hint="clear its read-only flag (Properties on Windows, chmod u+w elsewhere) or choose "
                           "another name; the previous file was left as it was")


def _explain(path: Path, exc: OSError, verb: str = "replace") -> WriteError:
    # the temp file beside it was made, so a refusal while the target exists is the rename onto it
    if _in_use(exc) and path.exists() and not _read_only(path):
        return WriteError(f"cannot {verb} {path}: the file is in use by another program",
                          hint="close the program that has it open (an image viewer, a WebUI that has the LoRA "
                               "loaded, a virus scan) and try again; the previous file was left as it was")
    if _in_use(exc) and path.exists():
        return _read_only_error(path, verb)
    if exc.errno == errno.ENAMETOOLONG or getattr(exc, "winerror", None) in _TOO_LONG_WINERRORS:
        return WriteError(f"cannot write {path}: the file name or the path is too long ({len(str(path))} "
                          "characters)", hint="choose a shorter name or a folder nearer the top of the disk; "
                          "Windows allows 260 characters unless long paths are turned on")
    reason = _WRITE_FAILURES.get(exc.errno or 0, exc.strerror or str(exc))
    return WriteError(f"cannot write {path}: {reason}", hint="free some space or choose another folder; "
                      "the previous file was left as it was")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "", *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any error it is removed.
    `durable=False` skips the fsyncs (after a power cut the file may be missing or empty): only for caches,
    where ten thousand fsyncs would cost more than rebuilding an entry."""
    path = Path(path)
    if _read_only(path):  # Windows refuses to replace it; elsewhere a rename would, but the user said no
        raise _read_only_error(path, "replace")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix or path.suffix) + ".tmp",
                                        dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _explain(path, exc) from None
    tmp = Path(tmp_name)
    with _undone_on_error(path, lambda: _discard(tmp)):
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        _set_mode(tmp, _mode_for(path))  # after writing: the writer may have made the file anew, and a
        replace_file(tmp, path)             # read-only target's mode would have stopped the write
        if durable:
            _fsync_dir(path.parent)


@contextlib.contextmanager
def _undone_on_error(path: Path, undo: Callable[[], None]) -> Iterator[None]:
    """On any error, `undo` the temporary and raise the failure in our words (a library's too)."""
    try:
        yield
    except OSError as exc:
        undo()
        raise _explain(path, exc) from None
    except BaseException as exc:
        error = _library_write_error(path, exc)
        undo()
        if error is not None:
            raise error from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temp path (for libraries that want a filename, e.g. safetensors)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def remove_file(path: str | Path) -> None:
    """Delete `path` (already gone is fine); a failure (read-only disk, permissions) is a WriteError like a write's."""
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise _explain(path, exc, "delete") from None


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a folder under a temp name and rename it into place once complete (checkpoints)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _explain(path, exc) from None
    with _undone_on_error(path, lambda: shutil.rmtree(tmp, ignore_errors=True)):
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            replace_file(path, old)
            try:
                replace_file(tmp, path)
            except OSError:
                os.replace(old, path)  # put the previous folder back before reporting
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            replace_file(tmp, path)
        _fsync_dir(path.parent)


def replace_file(src: str | Path, dst: str | Path) -> None:
    """`os.replace`, retried for about a second while Windows says another program has `dst` open; after that
    the PermissionError is raised as it came (`_explain` turns it into "in use"), `dst` untouched."""
    for delay in (*REPLACE_RETRY_DELAYS, None):
        try:
            os.replace(src, dst)
            return
        except PermissionError as exc:
            if delay is None or not _in_use(exc) or _read_only(Path(dst)):
                raise
            _sleep(delay)


def _library_write_error(path: Path, exc: BaseException) -> WriteError | None:
    """A library that does its own I/O (safetensors, torch.save) reports a full disk as its own exception type
    (`SafetensorError: … (os error 28)`, `RuntimeError: … unexpected pos …`); say what really happened.
    Called before the temporary is removed, while the disk is still as full as the write found it."""
    if not isinstance(exc, Exception) or isinstance(exc, StudioError):
        return None
    found = re.search(r"os error (\d+)|\[Errno (\d+)\]", str(exc))
    code = int(found.group(1) or found.group(2)) if found else 0
    if code in _WRITE_FAILURES:
        return _explain(path, OSError(code, os.strerror(code)))
    free = _free_bytes(path.parent)
    if free is not None and free < 1 << 20:
        return _explain(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    return None


def _free_bytes(folder: Path) -> int | None:
    """Free space for this user (root: all of it, as root may write into the reserve); None if unknown.
    `os.statvfs` is POSIX-only: elsewhere `shutil.disk_usage`, which every system has."""
    statvfs = getattr(os, "statvfs", None)
    try:
        if statvfs is not None:
            st = statvfs(folder)
            root = getattr(os, "geteuid", lambda: -1)() == 0
            return (st.f_bfree if root else st.f_bavail) * st.f_frsize
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 less the umask (mkstemp's is 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _set_mode(path: Path, mode: int) -> None:
    """Give the temp file the mode the target should have, by path (`os.chmod` exists everywhere; on Windows
    only the read-only flag means anything). A file system without modes (FAT or exFAT on Linux, some network
    shares) refuses with EPERM: the file then keeps what the system gives every file there, and is saved."""
    with contextlib.suppress(NotImplementedError, PermissionError):
        os.chmod(path, mode)


def _discard(tmp: Path) -> None:
    """Remove a temp file after a failed write. It may carry a read-only target's mode, and Windows will not
    delete a read-only file, so the flag is cleared first; a temp that cannot go is left (it is hidden)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
        return
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IWRITE | stat.S_IREAD)
        tmp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable on POSIX. Windows cannot open a folder as a file (and its renames are journaled),
    and some file systems refuse to fsync one: then there is nothing more to do."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
