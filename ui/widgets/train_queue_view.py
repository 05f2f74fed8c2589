"""The Train panel's Queue tab: the training queue, to reorder, remove, queue again and run unattended.

It shows the file `lora-studio queue` edits, read afresh on every change and whenever the tab is shown,
so entries added from a terminal appear too. Running goes through `QueueRunner`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QGridLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
                               QWidget)

from studio.errors import StudioError
from studio.train_queue import QueueEntry, TrainQueue
from ui.layout import fill, flat, row
from ui.train_queue_runner import QueueRunner
from ui.widgets.build import button


class TrainQueueView(QWidget):
    def __init__(self, queue: TrainQueue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue or TrainQueue()
        self.jobs = None
        self.runner: QueueRunner | None = None
        self.entries: list[QueueEntry] = []
        self.list = QListWidget(wordWrap=True)
        self.list.currentRowChanged.connect(lambda _row: self._enable())
        self.status = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QGridLayout(spacing=4)
        self.run_button = self._button(box, "Run queue", "Train every queued entry in order, unattended "
                                       "(an interrupted one first, from its last checkpoint)", self._run_or_stop)
        self.up_button = self._button(box, "Up", "Train this entry earlier", lambda: self._move(-1))
        self.down_button = self._button(box, "Down", "Train this entry later", lambda: self._move(+1))
        self.remove_button = self._button(box, "Remove", "Take this entry off the queue (its runs and exports "
                                          "stay on disk)", lambda: self._change(self.queue.remove, self._selected()))
        self.retry_button = self._button(box, "Queue again", "Queue a failed, stopped or interrupted entry "
                                         "again: it resumes from its last checkpoint",
                                         lambda: self._change(self.queue.requeue, self._selected()))
        self.clear_button = self._button(box, "Clear finished", "Forget the finished entries (their exports "
                                         "stay on disk)", lambda: self._change(self.queue.clear_done))
        box.setRowStretch(box.rowCount(), 1)
        # the buttons in two columns beside the list: the tab stays as narrow and as short as the others
        fill(flat(QVBoxLayout(self)), (row((self.list, 1), box), 1), self.status)
        self.refresh()

    @staticmethod
    def _button(grid: QGridLayout, text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
        made = button(text, tip, slot)
        index = grid.count()  # Run | Up, Down | Remove, Queue again | Clear finished
        grid.addWidget(made, index // 2, index % 2)
        return made

    def use_jobs(self, jobs) -> None:
        """The window's JobManager: each entry is submitted there as a TrainRequest."""
        self.jobs = jobs
        self.runner = QueueRunner(self.queue, jobs, self)
        self.runner.changed.connect(self.refresh)
        self.runner.problem.connect(self._show_problem)
        self._enable()

    def add(self, project_file: str, config_toml: str) -> None:
        """Queue the settings as they are now (unsaved edits included) for `project_file`."""
        try:
            entry = self.queue.add_config(project_file, config_toml)
        except StudioError as exc:
            self._show_problem(str(exc), exc.hint)
            return
        self.refresh()
        self.status.setText(f"Queued #{entry.id} {entry.label}.")

    def refresh(self) -> None:
        selected = self._selected()
        self.list.clear()
        try:
            self.entries = self.queue.entries()
            active = self.queue.runner_active()
        except StudioError as exc:  # a damaged file: the message says which file and how to get it back
            self.entries = []
            self._show_problem(str(exc), exc.hint)
            self._enable()
            return
        for position, entry in enumerate(self.entries, 1):
            item = QListWidgetItem(f"{position}. {entry.describe(active)}")
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            if entry.hint and entry.state != "done":
                item.setToolTip(entry.hint)
            self.list.addItem(item)
            if entry.id == selected:
                self.list.setCurrentItem(item)
        if not self.entries:
            self.status.setText(f"The queue is empty. “Queue” beside Start adds the current settings "
                                f"({self.queue.path}).")
        self._enable()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.refresh()  # `lora-studio queue add` from a terminal shows up when the tab is opened
        super().showEvent(event)

    # ---------------------------------------------------------------------------------------------
    def _selected(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _entry(self) -> QueueEntry | None:
        selected = self._selected()
        return next((e for e in self.entries if e.id == selected), None)

    def _enable(self) -> None:
        running = self.runner is not None and self.runner.active
        entry = self._entry()
        training = entry is not None and entry.state == "running" and running
        current = self.list.currentRow()
        self.run_button.setText("Stop queue" if running else "Run queue")
        self.run_button.setEnabled(self.runner is not None and (running or any(
            e.state in ("queued", "running") for e in self.entries)))
        self.up_button.setEnabled(entry is not None and current > 0)
        self.down_button.setEnabled(entry is not None and 0 <= current < len(self.entries) - 1)
        self.remove_button.setEnabled(entry is not None and not training)
        self.retry_button.setEnabled(entry is not None and not training and entry.state != "queued")
        self.clear_button.setEnabled(any(e.state == "done" for e in self.entries))

    def _run_or_stop(self) -> None:
        if self.runner is None:
            return
        self.status.clear()
        if self.runner.active:
            self.runner.stop()
            self.status.setText("Stopping: the entry training now saves, the rest stay queued.")
        else:
            self.runner.start()

    def _move(self, delta: int) -> None:
        selected = self._selected()
        if selected is not None:
            self._change(self.queue.move, selected, max(1, self.list.currentRow() + 1 + delta))

    def _change(self, action: Callable, *args) -> None:
        if None in args:
            return
        try:
            action(*args)
        except StudioError as exc:
            self._show_problem(str(exc), exc.hint)
            return
        self.status.clear()
        self.refresh()

    def _show_problem(self, message: str, hint: str) -> None:
        self.status.setText(message + (f" — {hint}" if hint else ""))
