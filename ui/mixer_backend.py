"""How the mixer panel gets its work done: a small `PreviewBackend` interface and two implementations.

The panel only ever calls `submit(kind, params) -> request id` and listens to four signals; it does not
know whether the work happens in the worker process (`WorkerPreviewBackend`, the app's choice: a crash
or out-of-memory there never takes the window down, and the base model stays loaded between previews)
or, in the tests, on a thread of the test process (`tests/mixer_helpers.py`).

Kinds are the worker's job names (`mix_preview`, `mix_grid`, `mix_export`, `mix_bake`, see
`studio.mix.jobs`); params are their JSON params. One job runs at a time; the panel coalesces requests
so that it never submits while `busy`.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal, Slot

from studio.events import Failed, Finished
from studio.mix.messages import MixResult
from studio.worker import protocol as p

_ids = itertools.count(1)


class PreviewBackend(Protocol):
    """What the mixer panel needs. Implementations are QObjects with these signals."""

    result: Any  # Signal(object): a MixResult
    failed: Any  # Signal(int, str, str): request id, error, hint
    busy_changed: Any  # Signal(bool)
    status: Any  # Signal(str): "loading the base model…", "the worker is busy training", …

    @property
    def busy(self) -> bool: ...

    def submit(self, kind: str, params: dict[str, Any]) -> int: ...


class _BackendSignals(QObject):
    result = Signal(object)
    failed = Signal(int, str, str)
    busy_changed = Signal(bool)
    status = Signal(str)

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
        self._pending: p.RunJob | None = None  # waiting for the worker to be ready; not sent yet
        client.message_received.connect(self._on_message)
        client.state_changed.connect(self._on_state)

    def submit(self, kind: str, params: dict[str, Any]) -> int:
        request_id = self._begin()
        command = p.RunJob(kind=kind, params={**params, "request_id": request_id})
        if self.client.state == "ready" and self.client.send(command):
            return request_id
        self._pending = command  # sent as soon as the worker says it is ready
        if not self.client.running:
            self.client.start()
        self.status.emit("waiting for the worker to start…")
        return request_id

    @Slot(str, str)
    def _on_state(self, state: str, detail: str) -> None:
        if state == "ready" and self._pending is not None:
            command, self._pending = self._pending, None
            if not self.client.send(command):
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
        if self._in_flight is None or self._pending is not None:
            return  # nothing of ours is running: these are the Train panel's (or an old worker's) messages
        if isinstance(message, MixResult):
            if message.request_id == self._in_flight:
                self.result.emit(message)
        elif isinstance(message, Failed):
            self._fail(message.error, message.hint)
        elif isinstance(message, p.WorkerError) and "already running" in message.error:
            self._fail("the worker is busy with another job (training?)", "the preview runs once it is free")
        elif isinstance(message, Finished):
            self._end()
