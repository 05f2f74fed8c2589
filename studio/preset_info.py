"""What a bundled preset is for, in words: the comment at the top of its TOML file.

Every preset starts with a `# …` comment saying what it is for; the preset box shows that beside the id
(issue 18: "presets listed by bare id with no description"). Reading it from the comment rather than a
`description` key keeps presets loadable as project mappings (`studio.config` rejects unknown keys) and
keeps one text for people reading the file and people using the app.
"""

from __future__ import annotations

from pathlib import Path

from studio.resources import presets_dir


def description_from_text(text: str) -> str:
    """The leading comment block of a TOML text as one sentence-string ("" when there is none)."""
    lines: list[str] = []
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(part for part in lines if part)


def short_description(description: str, limit: int = 60) -> str:
    """The part before the first ':' or '(' (the preset's purpose), at most `limit` characters."""
    head = description
    for stop in (":", " ("):
        head = head.split(stop, 1)[0]
    head = head.rstrip(" .,;")
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


def preset_description(name: str, folder: Path | None = None) -> str:
    """The full description of preset `name` ("" for an unknown preset or one without a comment)."""
    path = (folder or presets_dir()) / f"{name}.toml"
    try:
        return description_from_text(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return ""
