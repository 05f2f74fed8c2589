"""Batch operations on captions, as pure functions of one caption string.

A caption is either free text or comma-separated tags (the booru style WD14 taggers produce); the tag
operations split on commas, so a sentence is simply one long "tag". A `TagOp` can also describe itself,
so the batch edit can name the step in the undo menu ("Trigger word 'sks' first (100 images)").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


def split_tags(caption: str | None, separator: str = ",") -> list[str]:
    if not caption:
        return []
    return [t.strip() for t in caption.split(separator) if t.strip()]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(t.strip() for t in tags if t.strip())


_FOLD = re.compile(r"[\s_]+")


def _norm(tag: str) -> str:
    """Tags compare case-insensitively with runs of spaces and underscores folded ("Blue_Sky" = "blue sky")."""
    tag = tag.strip()
    if "_" in tag or "  " in tag or "\t" in tag or "\n" in tag:  # the regex only when it can change something
        tag = _FOLD.sub(" ", tag)
    return tag.casefold()


def tag_frequencies(captions: Iterable[str | None]) -> Counter[str]:
    """How many captions contain each tag (a tag repeated in one caption counts once)."""
    counts: Counter[str] = Counter()
    for caption in captions:
        counts.update({_norm(t): t for t in reversed(split_tags(caption))}.values())  # spelled as first seen
    return counts


def has_tag(caption: str | None, tag: str) -> bool:
    want = _norm(tag)
    return any(_norm(t) == want for t in split_tags(caption))


def trigger_first(caption: str | None, trigger: str) -> str:
    """Put `trigger` at the front, removing it wherever else it appears (so applying twice changes nothing)."""
    trigger = trigger.strip()
    if not trigger:
        return caption or ""
    want = _norm(trigger)
    return join_tags([trigger, *(t for t in split_tags(caption) if _norm(t) != want)])


def add_tag(caption: str | None, tag: str) -> str:
    tag = tag.strip()
    if not tag or has_tag(caption, tag):
        return caption or ""
    return join_tags([*split_tags(caption), tag])


def remove_tag(caption: str | None, tag: str) -> str:
    want = _norm(tag)
    tags = split_tags(caption)
    kept = [t for t in tags if _norm(t) != want]
    return caption or "" if len(kept) == len(tags) else join_tags(kept)


def rename_tag(caption: str | None, old: str, new: str) -> str:
    """Replace the tag `old` by `new` in place; if `new` was already there, the first one stays."""
    want = _norm(old)
    tags = split_tags(caption)
    if not any(_norm(t) == want for t in tags):
        return caption or ""
    return remove_duplicates(join_tags(new.strip() if _norm(t) == want else t for t in tags))


def remove_duplicates(caption: str | None) -> str:
    tags = split_tags(caption)
    first: dict[str, str] = {}
    for t in tags:
        first.setdefault(_norm(t), t)
    return caption or "" if len(first) == len(tags) else join_tags(first.values())


def sort_tags(caption: str | None, *, keep_first: int = 0, frequencies: Counter[str] | None = None) -> str:
    """Sort tags alphabetically, or most frequent first when `frequencies` is given; the first
    `keep_first` tags (a trigger word) keep their place."""
    tags = split_tags(caption)
    head, tail = tags[:keep_first], tags[keep_first:]
    if frequencies is not None:
        freq = {_norm(k): v for k, v in frequencies.items()}
        tail.sort(key=lambda t: (-freq.get(_norm(t), 0), _norm(t)))
    else:
        tail.sort(key=_norm)
    return join_tags(head + tail)


def find_replace(caption: str | None, find: str, replace: str, *, regex: bool = False,
                 case_sensitive: bool = True) -> str:
    """Replace text anywhere in the caption. With `regex`, `replace` may use \\1 groups. Raises
    re.error for a bad pattern (the dialog checks `compile_pattern` first)."""
    text = caption or ""
    if not find:
        return text
    pattern = compile_pattern(find, regex=regex, case_sensitive=case_sensitive)
    if not regex:
        replace = replace.replace("\\", "\\\\")
    return pattern.sub(replace, text).strip()


def compile_pattern(find: str, *, regex: bool, case_sensitive: bool) -> re.Pattern[str]:
    return re.compile(find if regex else re.escape(find), 0 if case_sensitive else re.IGNORECASE)


OpName = Literal["trigger_first", "add", "remove", "rename", "replace", "dedupe", "sort"]


@dataclass(frozen=True)
class TagOp:
    """One batch operation with its parameters. `apply` is pure; `describe` names it for the undo menu."""

    name: OpName
    tag: str = ""  # trigger / tag to add / tag to remove / old tag / text to find
    value: str = ""  # new tag name / replacement text
    regex: bool = False
    case_sensitive: bool = True
    keep_first: int = 0

    def __post_init__(self) -> None:
        if self.name in ("trigger_first", "add", "remove", "rename", "replace") and not self.tag.strip():
            raise ValueError("this operation needs a tag or text")
        if self.name == "rename" and not self.value.strip():
            raise ValueError("give the new name of the tag")
        if self.name == "replace":
            compile_pattern(self.tag, regex=self.regex, case_sensitive=self.case_sensitive)  # raises re.error

    def apply(self, caption: str | None, frequencies: Counter[str] | None = None) -> str:
        return {
            "trigger_first": lambda: trigger_first(caption, self.tag),
            "add": lambda: add_tag(caption, self.tag),
            "remove": lambda: remove_tag(caption, self.tag),
            "rename": lambda: rename_tag(caption, self.tag, self.value),
            "replace": lambda: find_replace(caption, self.tag, self.value, regex=self.regex,
                                            case_sensitive=self.case_sensitive),
            "dedupe": lambda: remove_duplicates(caption),
            "sort": lambda: sort_tags(caption, keep_first=self.keep_first, frequencies=frequencies),
        }[self.name]()

    def describe(self) -> str:
        return {
            "trigger_first": f"Trigger word “{self.tag}” first",
            "add": f"Add tag “{self.tag}”",
            "remove": f"Remove tag “{self.tag}”",
            "rename": f"Rename tag “{self.tag}” to “{self.value}”",
            "replace": f"Replace “{self.tag}” with “{self.value}”",
            "dedupe": "Remove duplicate tags",
            "sort": "Sort tags" + (f" (keep first {self.keep_first})" if self.keep_first else ""),
        }[self.name]
