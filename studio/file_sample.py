"""A cheap fingerprint of a file's content, for caches that must not trust size and modification time alone.

A tool that writes other bytes of the same length and puts the old timestamp back (`cp -p`, rsync, a
restore, a damaged copy) fools a (size, mtime) key; hashing every image on each open would cost what the
cache saves. So: size, mtime and the first and last `SAMPLE_BYTES` (header, and the end where truncation
shows); files up to twice that are hashed whole.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SAMPLE_BYTES = 16 * 1024  # per end: re-opening 10 000 cached images reads 320 MB, not the 30 GB decoded


def content_sample(path: str | Path, st: os.stat_result | None = None) -> str:
    """Hex digest of size, mtime and the head and tail of `path`; raises OSError if it cannot be read."""
    path = Path(path)
    st = st or os.stat(path)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{st.st_size}|{st.st_mtime_ns}|".encode())
    with open(path, "rb") as fh:
        if st.st_size <= 2 * SAMPLE_BYTES:
            h.update(fh.read(2 * SAMPLE_BYTES))
        else:
            h.update(fh.read(SAMPLE_BYTES))
            fh.seek(st.st_size - SAMPLE_BYTES)
            h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()
