"""Text files as Windows editors save them: UTF-8 with a byte-order mark, CRLF line ends.

The TOML parser takes Notepad's BOM for a stray character on line 1, and a caption read raw keeps the BOM in
its first tag and a `\\r` inside a tag. Everything that reads a text file the user may have edited decodes
it here, so they all agree on what the file says.
"""

from __future__ import annotations

import re

BOM = "\ufeff"


class NotUtf8Error(ValueError):
    """The bytes are not UTF-8 text; `reason` says what they look like instead, in words for a message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_text(raw: bytes) -> str:
    """`raw` as UTF-8 text, BOM removed and CRLF (and a lone CR) made LF; NotUtf8Error for UTF-16 (what
    Notepad calls "Unicode") and for bytes that are not UTF-8."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotUtf8Error("it is saved as UTF-16 (\"Unicode\"); save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise NotUtf8Error(f"it is not UTF-8 text (byte {exc.start} on line {line})") from None
    return normalize_text(text)


def normalize_text(text: str) -> str:
    """A leading BOM dropped and line ends made LF, for text that was decoded elsewhere."""
    return text.removeprefix(BOM).replace("\r\n", "\n").replace("\r", "\n")


def decode_caption(raw: bytes) -> str:
    """A caption sidecar's text: BOM dropped, Latin-1 when not UTF-8 (old tagging tools), stripped, and line
    breaks read as tag separators, so one tag per line gives the tags of one line (`a\\r\\nb` → `a, b`)."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # also when the rest is not UTF-8 (Latin-1 would show "ï»¿")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    # each line break (blank lines and a comma already ending the line included) becomes one ", "
    return re.sub(r",?\s*\n\s*", ", ", normalize_text(text).strip())
