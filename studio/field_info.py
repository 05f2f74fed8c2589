"""What the form and the command line show about each config field, read from `studio.config`'s metadata.

One function per fact, so the two surfaces cannot drift: `field_help` is both the tooltip and the flag's
`--help`, `field_choices` both the combo box and the metavar, and `parse_text` turns typed text into a value
that `config.build_section` then judges, so a wrong value gets the same message in both places.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from studio.config import SECTIONS, section_type


#: each section's title, in the order the form shows its groups (the CLI's --help groups too)
SECTION_TITLES: dict[str, str] = {"model": "Model", "dataset": "Dataset", "network": "Network",
                                  "optimizer": "Optimizer", "schedule": "Schedule", "sampling": "Sampling",
                                  "output": "Output"}


@dataclass(frozen=True)
class FieldInfo:
    section: str
    key: str
    type: Any
    meta: dict[str, Any]

    @property
    def flag(self) -> str:
        """`--network-rank`: the command-line flag for `[network] rank`."""
        return f"--{self.section}-{self.key}".replace("_", "-")


def _section_fields(section: str) -> Iterator[FieldInfo]:
    cls = section_type(section)
    hints = get_type_hints(cls)
    return (FieldInfo(section, f.name, hints[f.name], dict(f.metadata)) for f in fields(cls))


def field_info(section: str, key: str) -> FieldInfo:
    found = next((info for info in _section_fields(section) if info.key == key), None)
    if found is None:
        raise KeyError(f"{section}.{key}")
    return found


def all_fields() -> Iterator[FieldInfo]:
    """Every field of every section, in the order the project file lists them."""
    for section in SECTIONS:
        yield from _section_fields(section)


def field_choices(tp: Any) -> tuple[str, ...]:
    """The values a choice field takes: its `Literal`'s arguments (empty for other types)."""
    return tuple(get_args(tp)) if get_origin(tp) is Literal else ()


def range_text(meta: dict[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return ""
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else f"{v:,}"  # noqa: E731
    return f"{fmt(lo)} – {fmt(hi)}"


def field_help(section: str, key: str) -> str:
    """The help of one field as paragraphs (one per line): what it does, its range, its project-file name.
    The form's tooltip and `lora-studio train --help` both show exactly this text."""
    info = field_info(section, key)
    rng = range_text(info.meta)
    parts = (str(info.meta.get("help", "")).replace("`", ""), f"Range: {rng}" if rng else "",
             f"Project file: [{section}] {key}")
    return "\n".join(p for p in parts if p)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_text(text: str, tp: Any) -> Any:
    """What a user typed, as the field's type where it reads as one; otherwise the text itself, which the
    config then refuses with its own message (`[network] dropout is 'abc', expected a number`)."""
    stripped = text.strip()
    try:
        if tp is int:
            return int(stripped.replace(",", "").replace("_", ""))
        if tp is float:
            return float(stripped)
    except ValueError:
        return text
    if tp is bool:
        low = stripped.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    return text

