"""One job run in the worker, for a window part that asks for a single result and waits for it (the welcome
screen's demo project): send the typed request, start the worker if needed, and call back once with the
job's `Finished` or with its error.

The job is told from others by its `request_id` in `job_started` / `job_ended` (one job at a time, one ordered
pipe, so the `finished` / `failed` between them are its own); a refusal (`worker_error` with our id: another
job is running) and a worker that stops first are errors too, so the caller never waits for ever.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Slot

from studio.events import Failed, Finished
from studio.job_requests import JobRequest
from studio.worker import protocol as p

#: window-side ids start high so that they never meet the mixer's or the Train panel's small ones
_ids = itertools.count(1_000_001)


class WorkerJob(QObject):
    """Runs `request` once through `client` (a `ui.worker_client.WorkerClient`); then `on_done(finished)` or
    `on_error(error, hint)` is called exactly once, and the object lets go of the client."""

    def __init__(self, client: Any, request: JobRequest, *, on_done: Callable[[Finished], None],
                 on_error: Callable[[str, str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.request = replace(request, request_id=next(_ids))
        self._on_done, self._on_error = on_done, on_error
        self._sent = self._started = False
        self._outcome: Finished | Failed | None = None
        self.done = False
        client.message_received.connect(self._on_message)
        client.state_changed.connect(self._on_state)
        if client.state == "ready":
            self._send()
        elif not client.running:
            client.start()

    @property
    def request_id(self) -> int:
        return self.request.request_id

    def _send(self) -> None:
        self._sent = True
        if not self.client.send(self.request):
            self._end_with(Failed(error="the worker did not take the request", hint="restart the worker"))

    @Slot(str, str)
    def _on_state(self, state: str, detail: str) -> None:
        if self.done:
            return
        if state == "ready" and not self._sent:
            self._send()
        elif state in ("dead", "stopped"):
            self._end_with(Failed(error=f"the worker stopped before the {self.request.title} was ready",
                                  hint=detail))

    @Slot(object)
    def _on_message(self, message: Any) -> None:
        if self.done:
            return
        if isinstance(message, p.JobStarted):
            self._started = self._started or message.request_id == self.request_id
        elif isinstance(message, p.WorkerError) and message.request_id == self.request_id:
            self._end_with(Failed(error=message.error, hint=message.hint or "try again when the worker is free"))
        elif isinstance(message, (Finished, Failed)) and self._started:
            self._outcome = message
        elif isinstance(message, p.JobEnded) and message.request_id == self.request_id:
            self._end_with(self._outcome or Failed(error=f"the {self.request.title} ended without a result"))

    def _end_with(self, outcome: Finished | Failed) -> None:
        self.done = True
        self.client.message_received.disconnect(self._on_message)
        self.client.state_changed.disconnect(self._on_state)
        if isinstance(outcome, Finished):
            self._on_done(outcome)
        else:
            self._on_error(outcome.error, outcome.hint)
