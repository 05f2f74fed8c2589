"""Loading a LoRA in diffusers the way users do, with every message it gives kept for the test to read.

A key diffusers cannot place is only ever a logged warning (or a Python warning from peft), never an
exception, so "zero unmatched keys" can only be asserted on the collected messages.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

LIBRARIES = ("diffusers", "peft", "transformers")


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_lora_collecting_messages(pipe, path: str | Path, *, level: int = logging.WARNING, **kwargs) -> list[str]:
    """`pipe.load_lora_weights(path, **kwargs)`; returns the log records (at `level` and above) of diffusers,
    peft and transformers, then the Python warnings raised meanwhile."""
    handler = _Collect(level)
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pipe.load_lora_weights(str(path), **kwargs)
    finally:
        for lg, lvl in zip(loggers, old):
            lg.removeHandler(handler)
            lg.setLevel(lvl)
    return handler.messages + [str(w.message) for w in caught]
