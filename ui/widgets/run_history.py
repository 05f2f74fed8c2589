"""The project's past runs: status, steps, final loss, outputs, config, and a button to open the folder.

`runs/` is read on the thread pool, only when the history is refreshed, never on a timer. The run in
progress has no end event yet, which on disk reads as "interrupted": the Train panel names it
(`set_active_run`), so it is shown as running.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QPushButton, QSplitter, QTextBrowser, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from studio.run_folder import RunSummary, list_runs
from ui.background import run_in_background
from ui.layout import fill, flat, row
from ui.open_folder import open_folder_or_explain
from ui.widgets.build import button

COLUMNS = ("Run", "Status", "Steps", "Final loss", "Outputs")


class RunHistory(QWidget):
    resume_requested = Signal(object)  # RunSummary
    previews_requested = Signal(object)  # RunSummary

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project_dir: Path | None = None
        self.runs: list[RunSummary] = []
        split = QSplitter(Qt.Orientation.Vertical)
        self.tree = QTreeWidget(rootIsDecorated=False, uniformRowHeights=True)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.currentItemChanged.connect(self._show_details)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_folder())
        self.details = QTextBrowser(openLinks=False)
        self.details.anchorClicked.connect(QDesktopServices.openUrl)
        split.addWidget(self.tree)
        split.addWidget(self.details)
        split.setSizes([200, 160])
        self.open_button = button("Open folder", "Open the run's folder (config, samples, checkpoints, "
                                  "exports)", self.open_folder, enabled=False)
        self.previews_button = button("Show previews", "Load this run's preview images into the gallery",
                                      lambda: self._emit(self.previews_requested), enabled=False)
        self.resume_button = button("Resume", "Continue this run from its last checkpoint",
                                    lambda: self._emit(self.resume_requested), enabled=False)
        self.refresh_button = QPushButton("Refresh", clicked=self.refresh)
        fill(flat(QVBoxLayout(self)), (split, 1),
             row(self.open_button, self.previews_button, self.resume_button, None, self.refresh_button))
        self.resume_allowed = True
        self._active: Path | None = None  # the run in progress, shown as running
        self._active_step = (0, 0)  # its step and total
        self._active_row: QTreeWidgetItem | None = None

    def set_project_dir(self, folder: Path | None) -> None:
        self._project_dir = folder
        self.refresh()

    def refresh(self) -> None:
        if self._project_dir is None:
            self._fill([])
            return
        folder = self._project_dir
        run_in_background(list_runs, folder, on_done=lambda runs: self._loaded(folder, runs),
                          on_error=lambda exc: self._loaded(folder, []))

    def _loaded(self, folder: Path, runs: list[RunSummary]) -> None:
        if folder == self._project_dir:
            self._fill(runs)

    def set_active_run(self, run_dir: Path | None, step: int = 0, total: int = 0) -> None:
        """The run in progress (None once it ended); it is listed as running, not as interrupted."""
        self._active = Path(run_dir).resolve() if run_dir is not None else None
        self._active_step = (step, total)
        self._fill(self.runs)

    def show_active_step(self, step: int) -> None:
        self._active_step = (step, self._active_step[1])
        item = self._active_row
        if item is not None:
            item.setText(2, self._steps_text(item.data(0, Qt.ItemDataRole.UserRole)))

    def _is_active(self, run: RunSummary) -> bool:
        return self._active is not None and run.path.resolve() == self._active

    def status_of(self, run: RunSummary) -> str:
        return "running" if self._is_active(run) else run.status

    def _steps_text(self, run: RunSummary) -> str:
        step, total = (max(run.last_step, self._active_step[0]), self._active_step[1] or run.total_steps) \
            if self._is_active(run) else (run.last_step, run.total_steps)
        return f"{step} / {total}" if total else str(step)

    def _fill(self, runs: list[RunSummary]) -> None:
        selected = self.selected()
        self.runs = runs
        self.tree.clear()
        self._active_row = None
        for run in runs:
            loss = f"{run.final_loss:.4f}" if run.final_loss is not None else "—"
            status = self.status_of(run)
            item = QTreeWidgetItem([run.name, status, self._steps_text(run), loss, str(len(run.outputs))])
            item.setData(0, Qt.ItemDataRole.UserRole, run)
            item.setToolTip(1, run.error or status)
            if status == "running":
                self._active_row = item
            self.tree.addTopLevelItem(item)
            if selected is not None and run.path == selected.path:
                self.tree.setCurrentItem(item)
        for col in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(col)
        if self.tree.currentItem() is None and self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._show_details()

    def selected(self) -> RunSummary | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def set_resume_allowed(self, allowed: bool) -> None:
        """Resuming is refused while another run is going; the panel says when."""
        self.resume_allowed = allowed
        self._show_details()

    def _show_details(self, *_: object) -> None:
        run = self.selected()
        self.open_button.setEnabled(run is not None)
        self.previews_button.setEnabled(run is not None and run.num_samples > 0)
        self.resume_button.setEnabled(run is not None and run.resumable and self.resume_allowed
                                      and not self._is_active(run))
        if run is None:
            self.details.setHtml("<i>No runs yet.</i>" if self._project_dir else "<i>Open a project.</i>")
            return
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.modified)) if run.modified else ""
        steps = self._steps_text(run).replace(" / ", " of ")
        parts = [f"<b>{html.escape(run.name)}</b> — {self.status_of(run)}, step {steps}"
                 f"{', last changed ' + when if when else ''}"]
        if run.error:
            parts.append(f"<span style='color:#d9534f'>{html.escape(run.error)}</span>"
                         + (f"<br><i>{html.escape(run.hint)}</i>" if run.hint else ""))
        if run.last_checkpoint is not None:
            parts.append(f"Last checkpoint: step {run.checkpoint_step}")
        if run.outputs:
            links = "".join(f"<li><a href='{QUrl.fromLocalFile(o).toString()}'>{html.escape(o)}</a></li>"
                            for o in run.outputs)
            parts.append(f"Outputs:<ul>{links}</ul>")
        if run.config_text:
            parts.append(f"Config:<pre>{html.escape(run.config_text)}</pre>")
        self.details.setHtml("<p>" + "</p><p>".join(parts) + "</p>")

    def _emit(self, signal) -> None:
        run = self.selected()
        if run is not None:
            signal.emit(run)

    def open_folder(self) -> bool:
        """Show the selected run's folder; says why in a message when the desktop cannot."""
        run = self.selected()
        return run is not None and open_folder_or_explain(run.path, self.window())
