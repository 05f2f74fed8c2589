"""How the mixer panel gets its work done: a small `PreviewBackend` interface and two implementations.

The panel only ever calls `submit(request) -> request id` and listens to five signals; it does not
know whether the work happens in the worker process (`WorkerPreviewBackend`, the app's choice: a crash
or out-of-memory there never takes the window down, and the base model stays loaded between previews)
or, in the tests, on a thread of the test process (`tests/mixer_helpers.py`).

Requests are the typed job requests of `studio.job_requests` (MixPreviewRequest, MixGridRequest, …); the
backend stamps each with a fresh `request_id` and knows its job by that id in the worker's
`job_started` / `job_ended` events. One job runs at a time; the panel coalesces requests so that it never
submits while `busy`.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal, Slot

from studio.events import Failed, JobProgress
from studio.job_requests import JobRequest
from studio.mix.messages import MixResult
from studio.worker import protocol as p

_ids = itertools.count(1)


class PreviewBackend(Protocol):
    """What the mixer panel needs. Implementations are QObjects with these signals."""

    result: Any  # Signal(object): a MixResult
    failed: Any  # Signal(int, str, str): request id, error, hint
    busy_changed: Any  # Signal(bool)
    status: Any  # Signal(str): "loading the base model…", "the worker is busy training", …
    progress: Any  # Signal(object): a JobProgress of the job in flight

    @property
    def busy(self) -> bool: ...

    def submit(self, request: JobRequest) -> int: ...


class _BackendSignals(QObject):
    result = Signal(object)
    failed = Signal(int, str, str)
    busy_changed = Signal(bool)
    status = Signal(str)
    progress = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._in_flight: int | None = None

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def _begin(self) -> int:
        request_id = next(_ids)
        self._in_flight = request_id
        self.busy_changed.emit(True)
        return request_id

    def _end(self) -> None:
        if self._in_flight is not None:
            self._in_flight = None
            self.busy_changed.emit(False)


class WorkerPreviewBackend(_BackendSignals):
    """Runs mixer jobs in the app's worker process through its `WorkerClient` (shared with the Train panel)."""

    def __init__(self, client, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._pending: JobRequest | None = None  # waiting for the worker to be ready; not sent yet
        self._started = False  # the worker has sent job_started for the request in flight
        client.message_received.connect(self._on_message)
        client.state_changed.connect(self._on_state)

    def submit(self, request: JobRequest) -> int:
        request_id = self._begin()
        request = replace(request, request_id=request_id)
        self._started = False
        if self.client.state == "ready" and self.client.send(request):
            return request_id
        self._pending = request  # sent as soon as the worker says it is ready
        if not self.client.running:
            self.client.start()
        self.status.emit("waiting for the worker to start…")
        return request_id

    @Slot(str, str)
    def _on_state(self, state: str, detail: str) -> None:
        if state == "ready" and self._pending is not None:
            request, self._pending = self._pending, None
            if not self.client.send(request):
                self._fail("the worker did not take the request", detail)
        elif state in ("dead", "stopped") and self._in_flight is not None:
            self._pending = None
            self._fail("the worker stopped before the preview was ready", detail)

    def _fail(self, error: str, hint: str = "") -> None:
        request_id = self._in_flight or 0
        self._end()
        self.failed.emit(request_id, error, hint)

    @Slot(object)
    def _on_message(self, message: Any) -> None:
        ours = self._in_flight
        if ours is None or self._pending is not None:
            return  # nothing of ours is running: these are the Train panel's (or an old worker's) messages
        if isinstance(message, p.JobStarted):
            self._started = message.request_id == ours
        elif isinstance(message, p.WorkerError) and message.request_id == ours:  # refused: another job runs
            self._fail("the worker is busy with another job (training?)", "the preview runs once it is free")
        elif isinstance(message, (MixResult, JobProgress)) and message.request_id == ours:
            (self.result if isinstance(message, MixResult) else self.progress).emit(message)
        elif isinstance(message, Failed) and self._started:
            self._started = False
            self._fail(message.error, message.hint)
        elif isinstance(message, p.JobEnded) and message.request_id == ours:
            self._started = False
            self._end()
