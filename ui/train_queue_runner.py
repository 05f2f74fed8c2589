"""The window's side of the training queue: each entry of `studio.train_queue` in turn through the
window's `JobManager`, holding the queue's runner lock (so a `lora-studio queue run` of it is refused).

Unattended: a failure (a dead worker too) marks the entry failed, resumable, and sends the next one; a
user's Stop ends the queue after the entry training now.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QObject, QTimer, Signal

from studio.errors import StudioError
from studio.train_queue import TrainPlan, TrainQueue
from ui.jobs.job import CANCELLED, DONE, Job


class QueueRunner(QObject):
    changed = Signal()  # an entry's state changed, or the runner started or ended
    problem = Signal(str, str)  # message, hint: something the user should know (a queue file that cannot be read)

    def __init__(self, queue: TrainQueue, jobs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.jobs = jobs
        self.job: Job | None = None  # the entry training now (or waiting for the worker)
        self._lock: contextlib.ExitStack | None = None
        self._stopping = False

    @property
    def active(self) -> bool:
        return self._lock is not None

    def start(self) -> None:
        if self.active:
            return
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(self.queue.running())
        except StudioError as exc:
            self.problem.emit(str(exc), exc.hint)
            return
        self._lock, self._stopping = lock, False
        self._send_next()

    def stop(self) -> None:
        """End the queue: the entry training now is asked to stop (it saves); the rest stay queued."""
        if not self.active:
            return
        self._stopping = True
        if self.job is not None:
            self.jobs.cancel(self.job)
        else:
            self._release()

    def _send_next(self) -> None:
        try:
            plan = None if self._stopping else self.queue.start_next()
        except StudioError as exc:
            self.problem.emit(str(exc), exc.hint)
            plan = None
        if plan is None:
            self._release()
            return
        label = plan.config().output.name  # the Jobs dock's line: which entry, by the name of its LoRA
        job = self.job = self.jobs.submit(plan.request(0), f"queue #{plan.entry_id} {label}")
        job.ended.connect(lambda state, p=plan, j=job: self._ended(p, j, state))
        self.changed.emit()

    def _ended(self, plan: TrainPlan, job: Job, state: str) -> None:
        self.job = None
        try:
            if state == DONE:
                self.queue.finish(plan.entry_id, outputs=job.outputs, stopped=False)
            elif state == CANCELLED:
                self._stopping = True
                self.queue.finish(plan.entry_id, outputs=job.outputs, stopped=True)
            else:
                self.queue.fail(plan.entry_id, job.error or "the run failed", job.hint)
        except StudioError as exc:
            self.problem.emit(str(exc), exc.hint)
            self._stopping = True
        self.changed.emit()
        # not from inside the JobManager's handling of this end (a dead worker's, too): the next event-loop turn
        QTimer.singleShot(0, self._send_next)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.changed.emit()
