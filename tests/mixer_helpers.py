"""The mixer panel without a worker: its jobs run on a pool thread of the test process.

The window itself never imports the jobs (they load torch); the app always uses `WorkerPreviewBackend`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from studio.events import JobProgress
from studio.job_requests import JobRequest
from studio.mix.messages import MixResult
from ui.mixer_backend import _BackendSignals


class InProcessPreviewBackend(_BackendSignals):
    """Runs the same job functions on a pool thread of this process (tests; no worker needed)."""

    def submit(self, request: JobRequest) -> int:
        from studio.worker.jobs import resolve_job
        from ui.background import run_in_background

        request_id = self._begin()
        request = replace(request, request_id=request_id)
        job = resolve_job(request)

        def run() -> list[Any]:
            return list(job(request, None))

        run_in_background(run, on_done=lambda events: self._done(request_id, events),
                          on_error=lambda exc: self._error(request_id, exc))
        return request_id

    def _done(self, request_id: int, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, JobProgress) and event.request_id == request_id:
                self.progress.emit(event)
            if isinstance(event, MixResult) and event.request_id == request_id:
                self.result.emit(event)
        self._end()

    def _error(self, request_id: int, exc: BaseException) -> None:
        self._end()
        self.failed.emit(request_id, str(exc), getattr(exc, "hint", ""))
