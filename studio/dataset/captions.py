"""Caption sidecars (`image.txt`): reading, atomic writing, and noticing edits made by other programs.

Users keep a text editor or a tagging tool open on the same folder; writing our copy over a `cat.txt` they
changed there would silently destroy their work. So every read records a stamp (a hash of the bytes), and
a file that changed since is *reloaded* (the caller gets the new text), not overwritten.
`None` as a caption means "no sidecar file": writing it deletes the file, so undoing an image's first
caption restores the disk exactly.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from studio.fileio import WriteError, atomic_write_text, remove_file
from studio.textfile import decode_caption


@dataclass(frozen=True)
class Stamp:
    """What a sidecar looked like when last read or written; `exists=False` for no file."""

    exists: bool
    digest: str = ""


MISSING = Stamp(exists=False)


@dataclass(frozen=True)
class Caption:
    text: str | None  # stripped text; None when there is no sidecar
    stamp: Stamp


@dataclass(frozen=True)
class WriteResult:
    """`written` False means the file had changed on disk: `current` holds what is there now (reloaded)."""

    path: Path
    written: bool
    current: str | None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_sidecar(path: Path) -> Caption:
    """Read one sidecar file (not the image path) with its stamp."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return Caption(None, MISSING)
    return Caption(decode_caption(data), Stamp(True, _digest(data)))


class CaptionStore:
    """Reads and writes sidecars, remembering the stamp of each one it has seen. Thread-safe."""

    def __init__(self, extension: str = ".txt") -> None:
        self.extension = extension
        self._stamps: dict[Path, Stamp] = {}
        self._lock = threading.Lock()

    def sidecar(self, image: Path) -> Path:
        return image.with_suffix(self.extension)

    def read(self, image: Path) -> str | None:
        """The caption of `image` now on disk (None: no sidecar), remembered as the known version."""
        caption = read_sidecar(self.sidecar(image))
        with self._lock:
            self._stamps[image] = caption.stamp
        return caption.text

    def remember(self, image: Path) -> None:
        """Record the current disk state as known without returning it (after a scan read the text)."""
        self.read(image)

    def forget(self, image: Path) -> None:
        """Drop the remembered stamp (the caller re-read the text another way, e.g. a folder rescan); the
        next write then checks the disk against the text the caller expects."""
        with self._lock:
            self._stamps.pop(image, None)

    def changed_on_disk(self, image: Path, expected: object = ...) -> tuple[bool, str | None]:
        """(changed since we last read or wrote it, the text now on disk when it changed). For a file never
        read here (captions loaded by a scan), `expected` is the text the caller believes is there; without
        it such a file counts as unchanged.

        The bytes decide, never the timestamp: a `touch` is not an edit, and a tool that rewrites a file
        with the same size and puts its old timestamp back (`cp -p`, rsync) must not lose its edit."""
        with self._lock:
            known = self._stamps.get(image)
        path = self.sidecar(image)
        if known is None:
            current = read_sidecar(path)
            if expected is ...:
                return False, current.text
            want = expected.strip() if isinstance(expected, str) else None
            return current.text != want, current.text
        try:
            path.stat()  # gone is "no sidecar"; any other error is the caller's to report
        except FileNotFoundError:
            return known.exists, None
        current = read_sidecar(path)
        return current.stamp.exists != known.exists or current.stamp.digest != known.digest, current.text

    def write(self, image: Path, text: str | None, *, expected: object = ...) -> WriteResult:
        """Write `text` (None deletes the sidecar) unless the file changed on disk since we last saw it (or,
        for a file never read here, differs from `expected`): then the result carries the text now there.
        A sidecar that cannot be read or written is a WriteError naming it; a file we cannot read is never
        written over, since we could not tell what it holds."""
        path = self.sidecar(image)
        try:
            changed, current = self.changed_on_disk(image, expected)
            if changed:
                with self._lock:
                    self._stamps[image] = read_sidecar(path).stamp
                return WriteResult(path, False, current)
            if text is None:
                remove_file(path)
                stamp = MISSING
            else:
                atomic_write_text(path, text)
                stamp = Stamp(True, _digest(text.encode("utf-8")))
        except OSError as exc:
            raise WriteError(f"cannot save the caption {path}: {exc.strerror or exc}",
                             hint="check that the folder still exists and can be written") from None
        with self._lock:
            self._stamps[image] = stamp
        return WriteResult(path, True, text.strip() if text is not None else None)
