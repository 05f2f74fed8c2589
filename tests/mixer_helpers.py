"""The mixer panel without a worker: its jobs run one at a time on a thread of the test process.

`InProcessJobs` has the JobManager's surface the panel uses (`submit(request, title) -> Job`, `cancel`,
`running`), so the panel is tested as it runs in the app. The window itself never imports the jobs
(they load torch); the app always uses `ui.jobs.JobManager` and the worker.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from studio.events import Failed, Finished, JobProgress
from ui.jobs.job import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job


class InProcessJobs(QObject):
    _event = Signal(object, object)  # (job, event) from the job thread
    _done = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._queue: list[Job] = []
        self.running: Job | None = None
        self._control: Any = None
        self._event.connect(self._on_event)
        self._done.connect(self._on_done)

    def submit(self, request, title: str | None = None) -> Job:
        job_id = next(self._ids)
        job = Job(job_id, replace(request, request_id=job_id), title or type(request).title, self)
        self._queue.append(job)
        job.set_detail("queued")
        self._next()
        return job

    def cancel(self, job: Job) -> None:
        job.cancel_requested = True
        if job in self._queue:
            self._queue.remove(job)
            job.set_state(CANCELLED, "cancelled before it started")
        elif job is self.running and self._control is not None:
            self._control.request_stop()

    def _next(self) -> None:
        if self.running is not None or not self._queue:
            return
        from studio.train.control import TrainControl
        from studio.worker.jobs import resolve_job

        job = self.running = self._queue.pop(0)
        control = self._control = TrainControl()
        function = resolve_job(job.request)
        job.set_state(RUNNING)

        def run() -> None:
            try:
                for event in function(job.request, control):
                    self._event.emit(job, event)
            except BaseException as exc:  # the worker turns these into Failed too
                self._event.emit(job, Failed(error=str(exc), hint=getattr(exc, "hint", "")))
            self._done.emit(job)

        threading.Thread(target=run, daemon=True).start()

    @Slot(object, object)
    def _on_event(self, job: Job, event: Any) -> None:
        if isinstance(event, JobProgress):
            job.set_progress(event.done, event.total, event.unit, event.eta_s)
        elif isinstance(event, Failed):
            job.error, job.hint = event.error, event.hint
        elif isinstance(event, Finished):
            job.stopped = event.stopped
        elif getattr(event, "request_id", None) == job.id:
            job.results.append(event)
        job.event.emit(event)

    @Slot(object)
    def _on_done(self, job: Job) -> None:
        self.running = None
        job.set_state(FAILED if job.error else CANCELLED if job.stopped or job.cancel_requested else DONE,
                      job.error)
        self._next()


__all__ = ["InProcessJobs", "QUEUED"]
