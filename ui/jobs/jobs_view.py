"""The Jobs list: every job of the window with its state, progress bar and ETA, Cancel, and ↑ / ↓ to
reorder the queued ones. MainWindow shows it in a dock (View ▸ Jobs, or the status bar's Jobs button)."""

from __future__ import annotations

from PySide6.QtCore import QMargins, Qt
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QToolButton, QVBoxLayout,
                               QWidget)

from ui.jobs.job import QUEUED, RUNNING, Job
from ui.jobs.manager import JobManager
from ui.layout import column, fill, flat


class JobRow(QWidget):
    def __init__(self, job: Job, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job, self._jobs = job, jobs
        self.title = QLabel()
        self.detail = QLabel()
        self.detail.setProperty("role", "hint")
        self.bar = QProgressBar(textVisible=True)
        self.bar.setFixedWidth(160)
        self.up = QToolButton(text="↑", toolTip="Run earlier", clicked=lambda: self._move(-1))
        self.down = QToolButton(text="↓", toolTip="Run later", clicked=lambda: self._move(+1))
        for arrow in (self.up, self.down):
            policy = arrow.sizePolicy()  # hidden on a running row, the bars still line up
            policy.setRetainSizeWhenHidden(True)
            arrow.setSizePolicy(policy)
        self.cancel = QPushButton("Cancel", toolTip="Queued: remove it; running: stop it",
                                  clicked=lambda: jobs.cancel(job))
        text = column(self.title, self.detail)
        text.setSpacing(0)
        layout = fill(QHBoxLayout(self), (text, 1), self.bar, self.up, self.down, self.cancel)
        layout.setContentsMargins(4, 2, 4, 2)
        self.refresh()

    def _move(self, step: int) -> None:
        queue = self._jobs.queued()
        if self.job in queue:
            self._jobs.move(self.job.id, queue.index(self.job) + step)

    def refresh(self) -> None:
        job = self.job
        self.title.setText(f"<b>{job.state.capitalize()}</b> · {job.title}")
        pr = job.progress
        words = [w for w in (pr.text() if job.state == RUNNING else "", job.detail or job.error) if w]
        self.detail.setText(" — ".join(words))
        self.detail.setToolTip(job.hint)
        if job.state == RUNNING and not pr.total:
            self.bar.setRange(0, 0)  # busy, no count yet
        else:
            self.bar.setRange(0, max(1, pr.total))
            self.bar.setValue(pr.total if job.state == "done" else min(pr.done, pr.total))
        queued = job.state == QUEUED
        self.bar.setFormat("queued" if queued else "%p%")  # waiting is not "0%" done
        self.bar.setVisible(job.active)
        self.up.setVisible(queued)
        self.down.setVisible(queued)
        self.cancel.setVisible(job.active)


class JobsView(QWidget):
    """The list, rebuilt when jobs come, go or move; each row refreshes itself on its job's changes."""

    def __init__(self, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.rows: list[JobRow] = []
        self._holder = QWidget()
        self._list = QVBoxLayout(self._holder, contentsMargins=QMargins(), spacing=0)
        self.empty = QLabel("No jobs yet: training runs, previews, grids, exports, captioning and image checks show here.")
        self.empty.setProperty("role", "hint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self._holder)
        flat(fill(QVBoxLayout(self), scroll))
        for signal in (jobs.job_added, jobs.job_removed, jobs.order_changed):
            signal.connect(lambda *_job: self.rebuild())
        jobs.job_changed.connect(self._changed)
        self.rebuild()

    def row_for(self, job: Job) -> JobRow | None:
        return next((r for r in self.rows if r.job is job), None)

    def _changed(self, job: Job) -> None:
        order = self.jobs.jobs()
        if [r.job for r in self.rows] != order:
            self.rebuild()  # it moved between running / queued / ended
        elif (row := self.row_for(job)) is not None:
            row.refresh()

    def rebuild(self) -> None:
        while self._list.count():
            item = self._list.takeAt(0)
            widget = item.widget()
            if widget is not None and widget is not self.empty:
                widget.deleteLater()
        self.rows = [JobRow(job, self.jobs) for job in self.jobs.jobs()]
        fill(self._list, *self.rows, self.empty, None)
        self.empty.setVisible(not self.rows)

    def summary(self) -> str:
        """For the status bar's button: "Jobs: 1 running, 2 queued"."""
        running = self.jobs.running_count
        queued = len(self.jobs.queued())
        parts = [f"{running} running"] * bool(running) + [f"{queued} queued"] * bool(queued)
        return "Jobs: " + (", ".join(parts) if parts else "none running")
