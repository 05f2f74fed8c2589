"""One rule for turning a name a user gave (a LoRA, run, project or export name) into a file name that is
valid, stays in its folder and means the same file on Windows, macOS and Linux.

A project file travels (written on Linux, opened on Windows or by a stranger), so a name is judged by the
strictest system: no path separators or `.`/`..` parts; none of Windows' `< > : " | ? *` nor control
characters; no leading dot (hidden), no trailing dot or space (Windows drops them: `lora.` is `lora`); no
Windows device name (`CON`, `nul.txt`, …); never empty, and short enough that our additions
(`-step0001000`, `.…tmp`) stay within 255 bytes and a project's paths within Windows' 260 characters.
`unique_file_name` also avoids names differing from a taken one only by case (one file on Windows and macOS).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from pathlib import Path

from studio.errors import ConfigError

#: At most this many characters, and `MAX_NAME_BYTES` bytes of UTF-8, in a name we make.
MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 150
#: An extension longer than this is treated as part of the name when shortening.
_MAX_SUFFIX = 16

_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f\x7f]+')
_SEPARATORS = re.compile(r"[/\\]+")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"0123456789", "\u00b9", "\u00b2", "\u00b3")])


def _too_long(name: str) -> bool:
    return len(name) > MAX_NAME_CHARS or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES


def _is_reserved(name: str) -> bool:
    """Windows treats the part before the first dot, trailing spaces ignored, as the device (`nul .txt`)."""
    return name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def file_name_problem(name: str) -> str | None:
    """Why `name` cannot be used as a file name everywhere, in words for a message; None when it can."""
    if not name.strip():
        return "it is empty"
    if name.strip(" ") in (".", ".."):
        return f"`{name.strip()}` means a folder, not a file"
    if _SEPARATORS.search(name):
        return "it contains a folder separator (/ or \\), so the file would be written in another folder"
    if bad := sorted(set("".join(_FORBIDDEN.findall(name)))):
        shown = ", ".join("NUL" if c == "\0" else repr(c)[1:-1] if c < " " or c == "\x7f" else c for c in bad)
        return f"it contains characters a file name cannot hold on every system ({shown})"
    if name.startswith("."):
        return "it starts with a dot, which makes a hidden file"
    if name != name.strip(" ") or name.endswith("."):
        return "it starts or ends with a space, or ends with a dot (Windows drops those, so two names would be one file)"
    if _is_reserved(name):
        return f"`{name.split('.', 1)[0]}` is a device name on Windows, not a file"
    if _too_long(name):
        return (f"it is longer than a file name can safely be (at most {MAX_NAME_CHARS} characters, "
                f"{MAX_NAME_BYTES} bytes as UTF-8)")
    if unicodedata.normalize("NFC", name) != name:
        return "its accented letters are in decomposed form (macOS and Windows may store the name differently)"
    return None


def _shorten(name: str) -> str:
    """Cut the stem (not the extension) to the length limits, on a character boundary."""
    suffix = Path(name).suffix if "." in name.lstrip(".") else ""
    if len(suffix) > _MAX_SUFFIX:
        suffix = ""
    stem = name[:len(name) - len(suffix)] if suffix else name
    while stem and _too_long(stem + suffix):
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    return stem + suffix if stem else suffix.lstrip(".")


def safe_file_name(name: str, fallback: str = "untitled") -> str:
    """`name` made into a file name valid on all three systems; a safe name comes back unchanged, so no one's
    files are renamed. `../../escaped` → `escaped`, `a/b` → `a_b`, forbidden characters → `_`, `CON` → `CON_`,
    an empty result → `fallback`."""
    name = unicodedata.normalize("NFC", str(name))
    parts = [p.strip(" ") for p in _SEPARATORS.split(name) if p.strip(" .")]
    name = _FORBIDDEN.sub("_", "_".join(parts)).strip(" ").lstrip(".").rstrip(" .")
    if _too_long(name):
        name = _shorten(name)
    if not name:
        name = fallback
    if _is_reserved(name):
        stem, dot, rest = name.partition(".")
        name = f"{stem.rstrip(' ')}_{dot}{rest}"
    return name


def unique_file_name(name: str, taken: Collection[str], folder: Path | None = None) -> str:
    """`safe_file_name(name)`, numbered (`cat-2.png`) while it equals a taken name ignoring case and accent
    form, or exists in `folder`: `a.png` and `A.PNG` are one file on Windows and macOS."""
    name = safe_file_name(name)
    folded = {_fold(t) for t in taken}
    path = Path(name)
    suffix = path.suffix if len(path.suffix) <= _MAX_SUFFIX else ""
    stem = name[:len(name) - len(suffix)] if suffix else name
    candidate, n = name, 1
    while _fold(candidate) in folded or (folder is not None and (folder / candidate).exists()):
        n += 1
        candidate = safe_file_name(f"{stem[:MAX_NAME_CHARS - 8]}-{n}{suffix}")
    return candidate


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def refuse_unsafe_name(path: str | Path, what: str) -> Path:
    """`path` when its last part is a safe file name; otherwise a ConfigError naming `what`, the problem and a
    safe name. For a path the user picked for a new file: we do not rename it behind their back."""
    path = Path(path)
    problem = file_name_problem(path.name)
    if problem is not None:
        raise ConfigError(f"{what}: {path.name!r} cannot be a file name: {problem}",
                          hint=f"choose another name, for example {safe_file_name(path.name)!r}")
    return path
