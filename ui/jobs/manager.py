"""The window's one job queue: the only sender of job requests to the worker.

The worker runs one job at a time, so the others wait here (first in, first out, reorderable); one request
is out at a time, so events inside the job's brackets are its own. Nothing is re-sent behind the user's
back: a worker that dies fails the running job, and after `shut_down()` nothing is sent or started.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from studio.events import Failed, Finished, JobProgress, Progress
from studio.job_requests import JobRequest
from studio.worker import protocol as p
from studio.worker.client import WorkerExited
from ui.jobs.job import CANCELLED, DONE, FAILED, RUNNING, Job

STOP_GRACE_S = 2.0  # a cancelled job should end within this; after it the user is told it has not
KEEP_ENDED = 20  # finished jobs the list keeps showing


class JobManager(QObject):
    job_added = Signal(object)  # Job
    job_removed = Signal(object)  # Job: a queued job cancelled, or an old ended one dropped from the list
    job_changed = Signal(object)  # Job: its state, detail or progress changed
    order_changed = Signal()  # the queue was reordered

    def __init__(self, worker: Any, parent: QObject | None = None, *, stop_grace_s: float = STOP_GRACE_S) -> None:
        super().__init__(parent)
        self.worker = worker
        self.closing = False
        self._ids = itertools.count(1)
        self._queue: list[Job] = []
        self._running: Job | None = None
        self._opened = False  # the running job's job_started has arrived
        self._ended: list[Job] = []  # newest first
        self._local: dict[Job, Callable[[], None]] = {}  # running jobs of the window itself → how to stop each
        self._stop_timer = QTimer(self, singleShot=True, interval=int(stop_grace_s * 1000),
                                  timeout=self._stop_overdue)
        worker.message_received.connect(self._on_message)
        worker.state_changed.connect(self._on_worker_state)

    # ---------------------------------------------------------------------------------------------
    # what panels call
    def submit(self, request: JobRequest, title: str | None = None) -> Job:
        """Queue `request` (its `request_id` is set here) and return its Job; it runs when its turn comes."""
        job_id = next(self._ids)
        job = self._new_job(Job(job_id, replace(request, request_id=job_id), title or type(request).title, self))
        if self.closing:
            self._ended.insert(0, job)
            job.set_state(CANCELLED, "not started: LoRA Studio is quitting")
            return job
        self._queue.append(job)
        self.job_added.emit(job)
        self._pump(start_worker=True)
        self._describe_queue()
        return job

    def track(self, title: str, kind: str, stop: Callable[[], None]) -> Job:
        """A job the window runs itself (the image check): listed and cancellable with the worker's, never
        queued behind them. Its owner ends it with `end_tracked`; Cancel calls `stop` and ends it at once."""
        job = self._new_job(Job(next(self._ids), None, title, self, kind=kind))
        self._local[job] = stop
        job.set_state(RUNNING)
        self.job_added.emit(job)
        return job

    def end_tracked(self, job: Job, state: str, detail: str = "") -> None:
        if self._local.pop(job, None) is not None:
            self._finish(job, state, detail)

    def cancel(self, job: Job) -> None:
        """A queued job is dropped at once; a running one is asked to stop (it should end within ~2 s)."""
        if job in self._local:
            job.cancel_requested = True
            self._local[job]()
            self.end_tracked(job, CANCELLED, "cancelled")
        elif job in self._queue:
            self._queue.remove(job)
            job.cancel_requested = True
            job.set_state(CANCELLED, "cancelled before it started")
            self.job_removed.emit(job)
            self._describe_queue()
        elif job is self._running and not job.cancel_requested:
            job.cancel_requested = True
            if self.worker.send(p.Stop()):
                job.set_detail("stopping…")
                self._stop_timer.start()
            else:
                self._end_running(CANCELLED, "cancelled (the worker had already stopped)")

    def move(self, job_id: int, index: int) -> bool:
        """Move a queued job to position `index` of the queue (0: runs next). False if it is not queued."""
        job = next((j for j in self._queue if j.id == job_id), None)
        if job is None:
            return False
        self._queue.remove(job)
        self._queue.insert(max(0, min(index, len(self._queue))), job)
        self._describe_queue()
        self.order_changed.emit()
        return True

    def jobs(self) -> list[Job]:
        """Every job the list shows: the running one, the queued ones in the order they will run, then
        the ended ones, newest first."""
        return ([self._running] if self._running else []) + list(self._local) + list(self._queue) + list(self._ended)

    def queued(self) -> list[Job]:
        return list(self._queue)

    @property
    def running(self) -> Job | None:
        """The worker's running job (the window's own jobs run beside it: `running_count` counts both)."""
        return self._running

    @property
    def running_count(self) -> int:
        return (self._running is not None) + len(self._local)

    def shut_down(self) -> None:
        """The window is quitting: drop the queue, ask the running job to stop, never send or start again."""
        self.closing = True
        for job in list(self._queue) + list(self._local):
            self.cancel(job)
        if self._running is not None and not self._running.cancel_requested:
            self._running.cancel_requested = True
            self._running.set_detail("stopping: LoRA Studio is quitting")
            self.worker.send(p.Stop())

    # ---------------------------------------------------------------------------------------------
    def _new_job(self, job: Job) -> Job:
        for signal in (job.state_changed, job.detail_changed, job.progress_changed):
            signal.connect(lambda *_a, j=job: self.job_changed.emit(j))
        return job

    def _pump(self, *, start_worker: bool = False) -> None:
        while not self.closing and self._running is None and self._queue:
            if self.worker.state != "ready":
                if start_worker and not self.worker.running:
                    self.worker.start()
                return
            job = self._queue.pop(0)
            self._running, self._opened = job, False
            if not self.worker.send(job.request):
                self._running = None
                self._queue.insert(0, job)
                return
            job.set_state(RUNNING, "starting…")
        self._describe_queue()

    def _describe_queue(self) -> None:
        before = self._running
        for job in self._queue:
            if before is not None:
                job.set_detail(f"queued: runs after the {before.title} job")
            else:
                waiting = not self.closing and self.worker.state != "ready"
                job.set_detail("queued: waiting for the worker to start" if waiting else "queued")
            before = job

    @Slot(str, str)
    def _on_worker_state(self, state: str, _detail: str) -> None:
        if state == "ready":
            self._pump()
        else:
            self._describe_queue()

    @Slot(object)
    def _on_message(self, message: Any) -> None:
        job = self._running
        if isinstance(message, WorkerExited):
            if job is not None:
                job.worker_exit = message
                if job.cancel_requested:
                    self._end_running(CANCELLED, "cancelled (the worker was stopped)")
                else:
                    self._end_running(FAILED, worker_stopped(message), "it was not re-queued: run it again "
                                      "when the worker is ready")
            self._describe_queue()
            return
        if job is None:
            return
        if isinstance(message, (p.JobStarted, p.JobEnded)) and message.request_id not in (0, job.id):
            return  # not ours (a job some other sender started)
        if isinstance(message, p.JobStarted):
            self._opened = True
            job.set_detail("stopping…" if job.cancel_requested else "")
            return
        if isinstance(message, p.WorkerError) and (message.request_id == job.id or
                                                   (not self._opened and not message.request_id)):
            self._end_running(FAILED, message.error, message.hint)  # the worker refused the request
            self._pump()
            return
        if not self._opened:
            return
        if isinstance(message, p.JobEnded):
            state = FAILED if job.error else CANCELLED if (job.stopped or job.cancel_requested) else DONE
            self._end_running(state, job.error or ("cancelled" if state == CANCELLED else ""), job.hint)
            self._pump()
            return
        if isinstance(message, Progress):
            job.set_progress(message.step, message.total, "steps", message.eta_s)
        elif isinstance(message, JobProgress):  # the mixer's steps / cells, the captioner's files
            job.set_progress(message.done, message.total, message.unit, message.eta_s)
        elif isinstance(message, Finished):
            job.outputs, job.stopped = tuple(message.outputs), bool(message.stopped)
        elif isinstance(message, Failed):
            job.error, job.hint = message.error, message.hint
        elif getattr(message, "request_id", None) == job.id:
            job.results.append(message)  # a result event (MixResult, …) carrying this job's id
        job.event.emit(message)

    def _end_running(self, state: str, detail: str, hint: str = "") -> None:
        job, self._running, self._opened = self._running, None, False
        self._stop_timer.stop()
        if job is not None:
            if state == FAILED and not job.error:
                job.error, job.hint = detail, hint
            self._finish(job, state, detail)

    def _finish(self, job: Job, state: str, detail: str) -> None:
        self._ended.insert(0, job)
        for old in self._ended[KEEP_ENDED:]:
            self._ended.remove(old)
            self.job_removed.emit(old)
        job.set_state(state, detail)

    def _stop_overdue(self) -> None:
        job = self._running
        if job is not None and job.cancel_requested:
            job.set_detail("still stopping: the worker ends it after its current step "
                           "(Worker ▸ Restart worker ends it at once)")


def worker_stopped(message: WorkerExited) -> str:
    code = f" (exit {message.returncode})" if message.returncode is not None else ""
    if message.expected:
        return f"the worker stopped: it was restarted{code}"
    how = message.describe().replace("the worker process ", "it ", 1)
    return f"the worker stopped: {how}{code}"
