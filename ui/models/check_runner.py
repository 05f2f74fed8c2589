"""Runs the image check (`studio.dataset.check.check_images`) off the GUI thread, with progress.

Starting a check while one runs cancels the old one and runs the new one after it stops (the images or
the training resolution changed, so the old answer is stale). Given the window's `JobManager` (`jobs`),
each check is listed in the Jobs dock with its progress in images, and its Cancel there stops it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from studio.dataset.check import CheckProgress, CheckReport, check_images
from studio.dataset.scan import ImageRecord
from ui.background import run_in_background
from ui.jobs.job import CANCELLED, DONE, FAILED, Job

PROGRESS_MS = 200


class CheckRunner(QObject):
    progress = Signal(int, int)  # done, total
    finished = Signal(object)  # CheckReport
    failed = Signal(str)

    def __init__(self, cache_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache_dir = cache_dir
        self._current: CheckProgress | None = None
        self._next: tuple[list[ImageRecord], int] | None = None
        self._timer = QTimer(self, interval=PROGRESS_MS, timeout=self._tick)
        self.jobs: Any = None  # the window's JobManager, which lists each check
        self._job: Job | None = None

    @property
    def running(self) -> bool:
        return self._current is not None

    def start(self, records: list[ImageRecord], min_size: int) -> None:
        if self._current is not None:
            self._next = (records, min_size)
            self._current.cancel()
            return
        if not records:
            return
        progress = self._current = CheckProgress(total=len(records))
        workers = max(1, min(4, os.cpu_count() or 2))
        cache_dir = self.cache_dir
        run_in_background(lambda: check_images(records, min_size=min_size, cache_dir=cache_dir, progress=progress,
                                                workers=workers),
                          on_done=lambda report: self._done(report, progress),
                          on_error=lambda exc: self._failed(exc, progress))
        self._timer.start()
        if self.jobs is not None:
            self._job = self.jobs.track(f"image check ({len(records):,} images)", "check", self.cancel)

    def cancel(self) -> None:
        self._next = None
        if self._current is not None:
            self._current.cancel()

    def _tick(self) -> None:
        if self._current is not None:
            self.progress.emit(self._current.done, self._current.total)
            if self._job is not None:
                self._job.set_progress(self._current.done, self._current.total, "images")

    def _end_job(self, state: str, detail: str = "") -> None:
        job, self._job = self._job, None
        if job is not None and self.jobs is not None:
            self.jobs.end_tracked(job, state, detail)

    def _settle(self, progress: CheckProgress) -> bool:
        """Bookkeeping when a run ends; True if its result should be shown."""
        if progress is not self._current:
            return False
        self._timer.stop()
        self._current = None
        if progress.cancelled:
            self._end_job(CANCELLED, "replaced by a new check: the images changed" if self._next else "cancelled")
        if self._next is not None:
            pending, self._next = self._next, None
            self.start(*pending)
            return False
        return not progress.cancelled

    def _done(self, report: CheckReport, progress: CheckProgress) -> None:
        if self._settle(progress):
            self._end_job(DONE, f"{len(report.problems)} problem(s) in {len(report.checks):,} images")
            self.finished.emit(report)

    def _failed(self, exc: BaseException, progress: CheckProgress) -> None:
        if self._settle(progress):
            self._end_job(FAILED, str(exc))
            self.failed.emit(f"The image check failed: {exc}")
