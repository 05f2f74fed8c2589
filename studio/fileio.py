"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target.

A crash, a kill or a full disk at any moment leaves either the old file or the new one, never half of
one. Every writer in `studio` goes through here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from studio.errors import StudioError


class WriteError(StudioError):
    """A file could not be written; the previous version, if any, is untouched."""


def _explain(path: Path, exc: OSError) -> WriteError:
    import errno

    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the disk is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EFBIG: "the file is larger than this disk or folder allows",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return WriteError(f"cannot write {path}: {reason}", hint="free some space or choose another folder; "
                      "the previous file was left as it was")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "", *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any error it is removed.

    `durable=False` skips the fsyncs: still all-or-nothing for readers, but after a power cut the file may be
    missing or empty. Only for caches, where ten thousand fsyncs would cost more than rebuilding an entry.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix or path.suffix) + ".tmp",
                                        dir=path.parent)
        os.fchmod(fd, _mode_for(path))
        os.close(fd)
    except OSError as exc:
        raise _explain(path, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(path, exc) from None
    except BaseException as exc:
        error = _library_write_error(path, exc)
        tmp.unlink(missing_ok=True)
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
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _explain(path, exc) from None


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a folder under a temp name and rename it into place once complete (checkpoints)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _explain(path, exc) from None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _explain(path, exc) from None
    except BaseException as exc:
        error = _library_write_error(path, exc)
        shutil.rmtree(tmp, ignore_errors=True)
        if error is not None:
            raise error from exc
        raise


def _library_write_error(path: Path, exc: BaseException) -> WriteError | None:
    """A library that does its own I/O (safetensors, torch.save) reports a full disk as its own exception type
    (`SafetensorError: … (os error 28)`, `RuntimeError: … unexpected pos …`); say what really happened.
    Called before the temporary is removed, while the disk is still as full as the write found it."""
    import errno
    import re

    if not isinstance(exc, Exception) or isinstance(exc, StudioError):
        return None
    found = re.search(r"os error (\d+)|\[Errno (\d+)\]", str(exc))
    code = int(found.group(1) or found.group(2)) if found else 0
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM):
        return _explain(path, OSError(code, os.strerror(code)))
    try:
        st = os.statvfs(path.parent)
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        return None
    root = getattr(os, "geteuid", lambda: -1)() == 0
    if (st.f_bfree if root else st.f_bavail) * st.f_frsize < 1 << 20:
        return _explain(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    return None


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 less the umask (mkstemp's is 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
