"""The closed set of events a job (training, sampling, mixing) reports.

The engine yields them, the worker sends them as JSON lines, the CLI draws a progress bar from them and the
GUI charts them. Each is stamped with the time it was made, so a log of them is a complete record of a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


@dataclass(frozen=True)
class Event:
    """`type` names the event on the wire: `class Log(Event, type="log")` (or a `type` ClassVar) sets it."""

    type: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def __init_subclass__(cls, type: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if type:
            cls.type = type


@dataclass(frozen=True)
class Started(Event, type="started"):
    run_dir: str
    total_steps: int
    start_step: int = 0
    num_images: int = 0
    device: str = "cpu"


@dataclass(frozen=True)
class Progress(Event, type="progress"):
    step: int
    total: int
    epoch: int
    loss: float
    smoothed_loss: float
    lr: float
    it_per_s: float
    eta_s: float | None = None
    gpu_mem_mb: float | None = None


@dataclass(frozen=True)
class JobProgress(Event, type="job_progress"):
    """Progress of a job other than training (a preview's sampling steps, a grid's cells, captioned
    images), so the window can draw a bar and an ETA for it; `request_id` is the request's."""
    request_id: int
    done: int
    total: int
    unit: Literal["steps", "cells", "files", "images"]
    eta_s: float | None = None


@dataclass(frozen=True)
class CaptionWritten(Event, type="caption_written"):
    """One image of an auto-caption job: `caption` is what its sidecar holds now (None: left as it was, by
    the mode or because of `error`), `before` what it held (None: no sidecar), `generated` the model's text."""
    request_id: int
    image: str
    generated: str = ""
    caption: str | None = None
    before: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Validation(Event, type="validation"):
    step: int
    loss: float


@dataclass(frozen=True)
class Sample(Event, type="sample"):
    step: int
    prompt: str
    seed: int
    path: str


@dataclass(frozen=True)
class Checkpoint(Event, type="checkpoint"):
    path: str
    step: int
    lora_path: str = ""


@dataclass(frozen=True)
class Log(Event, type="log"):
    level: str
    text: str


@dataclass(frozen=True)
class StateChanged(Event, type="state"):
    """Lifecycle of the job: running, paused, stopping."""
    state: str


@dataclass(frozen=True)
class Finished(Event, type="finished"):
    outputs: tuple[str, ...]
    step: int = 0
    stopped: bool = False


@dataclass(frozen=True)
class Failed(Event, type="failed"):
    error: str
    hint: str = ""
    traceback: str = ""


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in Event.__subclasses__()}
