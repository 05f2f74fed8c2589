"""What a bundled preset is for and what it sets: the comment at the top of its TOML file, and its keys.

The preset box shows each preset's leading `# …` comment beside its id (issue 18: "presets listed by bare id
with no description"); a comment rather than a `description` key keeps presets loadable as project mappings
and keeps one text for people reading the file. The box also shows the preset *in effect*
(`matching_preset`), and applying one lists what it changed (`preset_changes`) so Undo knows what to put back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studio.config import SECTIONS, ProjectConfig, load_preset, paired_values, preset_names, tomllib
from studio.errors import StudioError
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


@dataclass(frozen=True)
class Preset:
    """A bundled preset: its id, what it is for, and the values it sets (applied over the defaults)."""

    name: str
    description: str
    values: tuple[tuple[str, str, Any], ...]  # (section, key, value), only the keys its file names

    def matches(self, cfg: ProjectConfig) -> bool:
        return bool(self.values) and all(same(getattr(getattr(cfg, s), k), v) for s, k, v in self.values)


def read_preset(name: str) -> Preset:
    """The preset `name`; StudioError if it cannot be read."""
    path = presets_dir() / f"{name}.toml"
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StudioError(f"cannot read the preset {path}: {exc}") from None
    applied = load_preset(name)
    values = tuple((section, key, getattr(getattr(applied, section), key))
                   for section, table in data.items() if section in SECTIONS and isinstance(table, dict)
                   for key in table)
    return Preset(name, description_from_text(text), values)


def bundled_presets() -> list[Preset]:
    """Every bundled preset that reads (a damaged one is left out of the box, not a crash at start-up)."""
    found = []
    for name in preset_names():
        try:
            found.append(read_preset(name))
        except StudioError:
            continue
    return found


def matching_preset(cfg: ProjectConfig, presets: list[Preset]) -> Preset | None:
    """The preset in effect: of those whose every value `cfg` has, the one that sets the most (None: custom)."""
    matches = [p for p in presets if p.matches(cfg)]
    return max(matches, key=lambda p: len(p.values), default=None)


@dataclass(frozen=True)
class Change:
    section: str
    key: str
    old: Any
    new: Any


def preset_changes(before: ProjectConfig, after: ProjectConfig) -> list[Change]:
    """Every setting that differs between two configs, in the form's order."""
    return [Change(*pair) for pair in paired_values(before, after) if not same(pair[2], pair[3])]


def same(a: Any, b: Any) -> bool:
    """Equal, with floats compared to their shown precision (a spin box may round 5e-05 on its way back)."""
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return a == b
