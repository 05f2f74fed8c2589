"""One long job as the window sees it: queued → running → done / failed / cancelled.

One signal per kind of change, so a panel follows its own job without knowing the worker or the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.job_requests import JobRequest

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ENDED = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobProgress:
    """Where a job stands: `done` of `total` units (steps, cells, files); `eta_s` None while unknown."""

    done: int = 0
    total: int = 0
    unit: str = "steps"
    eta_s: float | None = None

    def text(self) -> str:
        if not self.total:
            return ""
        eta = f", ETA {format_duration(self.eta_s)}" if self.eta_s is not None and self.done < self.total else ""
        return f"{self.done}/{self.total} {self.unit}{eta}"


def format_duration(seconds: float | None) -> str:
    """"1:02:03" or "2:03" for an ETA or an elapsed time (the Jobs list and the Train panel alike); "—" unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Job(QObject):
    """A submitted request. `id` is the request id sent to the worker; `detail` says what is happening now
    ("queued: runs after the training job", "stopping…", the failure's reason)."""

    state_changed = Signal(str)  # the new state
    progress_changed = Signal(object)  # JobProgress
    detail_changed = Signal(str)
    event = Signal(object)  # each worker event of this job, in order (Log, Progress, Sample, results…)
    ended = Signal(str)  # the final state, once

    def __init__(self, job_id: int, request: JobRequest | None, title: str, parent: QObject | None = None, *,
                 kind: str = "") -> None:
        super().__init__(parent)
        self.id = job_id
        self.request = request  # None for a job the window runs itself (the image check)
        self._kind = kind
        self.title = title
        self.state = QUEUED
        self.detail = ""
        self.error = ""
        self.hint = ""
        self.progress = JobProgress()
        self.results: list[Any] = []  # the job's result events (MixResult, …)
        self.outputs: tuple[str, ...] = ()
        self.cancel_requested = False
        self.stopped = False  # it ended because it was asked to stop
        self.started_at: float | None = None
        self.worker_exit: Any = None  # the WorkerExited that ended it, when the worker stopped under it

    @property
    def kind(self) -> str:
        return type(self.request).type if self.request is not None else self._kind

    @property
    def active(self) -> bool:
        return self.state not in ENDED

    def set_state(self, state: str, detail: str = "") -> None:
        if state == RUNNING and self.started_at is None:
            self.started_at = time.monotonic()
        changed = state != self.state
        self.state = state
        self.set_detail(detail)
        if changed:
            self.state_changed.emit(state)
            if state in ENDED:
                self.ended.emit(state)

    def set_detail(self, detail: str) -> None:
        if detail != self.detail:
            self.detail = detail
            self.detail_changed.emit(detail)

    def set_progress(self, done: int, total: int, unit: str, eta_s: float | None = None) -> None:
        """Record progress; without an ETA from the worker it is estimated from the rate so far."""
        if eta_s is None and self.started_at is not None and 0 < done < total:
            elapsed = time.monotonic() - self.started_at
            eta_s = elapsed / done * (total - done)
        self.progress = JobProgress(done=done, total=total, unit=unit, eta_s=eta_s)
        self.progress_changed.emit(self.progress)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.title!r} {self.state}>"
