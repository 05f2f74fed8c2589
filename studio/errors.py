"""Errors that reach the user. Each carries a message a person can act on, and optionally a hint.

Code anywhere in `studio` raises these for bad input; the CLI prints `str(error)` (and the hint) as one
line, the worker turns them into `failed` events, and the GUI shows them. Anything else is a bug and
gets a traceback in `--debug` mode and in the worker's log.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(StudioError):
    """A project file, preset or option is wrong."""


class DatasetError(StudioError):
    """The dataset cannot be used for training (empty, unreadable, …)."""


class ModelLoadError(StudioError):
    """A base model or LoRA file cannot be loaded."""


class UnsafeFileError(ModelLoadError):
    """A file would need code execution (pickle) or lies about its contents."""


class LoraFormatError(StudioError):
    """A LoRA file has keys or shapes we cannot map."""

