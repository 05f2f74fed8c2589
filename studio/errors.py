"""Errors that reach the user. Each carries a message a person can act on, and optionally a hint.

The CLI prints `str(error)` (and the hint), the worker turns them into `failed` events, and the GUI shows
them. Anything else is a bug and gets a traceback in `--debug` mode and in the worker's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, naming the field to change (`[section] key`), so the form can
    highlight it and the CLI print it in the same words. `warning`s are shown; only `error`s block a run."""

    section: str
    key: str
    message: str
    hint: str = ""
    severity: Literal["error", "warning"] = "error"


class StudioError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(StudioError):
    """A project file, preset or option is wrong. `section`/`key` name the field when one is at fault and
    `problems` lists every problem found (a check that finds several reports them all at once)."""

    def __init__(self, message: str, hint: str = "", *, section: str = "", key: str = "",
                 problems: Sequence[Problem] = ()) -> None:
        super().__init__(message, hint)
        self.section, self.key = section, key
        self.problems: tuple[Problem, ...] = tuple(problems)

    @classmethod
    def from_problems(cls, problems: Sequence[Problem], source: str = "") -> "ConfigError":
        """One error for several problems: the message lists each (one per line), the hint is the first one
        any of them has (a missing field has none: where to set it is each surface's to say)."""
        first = problems[0]
        prefix = f"{source}: " if source else ""
        message = "\n".join(prefix + p.message for p in problems)
        hint = next((p.hint for p in problems if p.hint), "")
        return cls(message, hint, section=first.section, key=first.key, problems=problems)


class DatasetError(StudioError):
    """The dataset cannot be used for training (empty, unreadable, …)."""


class ModelLoadError(StudioError):
    """A base model or LoRA file cannot be loaded."""


class UnsafeFileError(ModelLoadError):
    """A file would need code execution (pickle) or lies about its contents."""


class LoraFormatError(StudioError):
    """A LoRA file has keys or shapes we cannot map."""

