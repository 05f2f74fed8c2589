"""The image-check report: every problem found, excluded ones first; clicking a row selects the image."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from studio.dataset.scan import Problem
from ui.layout import fill, flat
from ui.models.problem_model import ProblemModel
from ui.widgets.build import read_only_rows

NOT_CHECKED = "Images are checked after they are loaded."


class ProblemReport(QWidget):
    image_chosen = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel(NOT_CHECKED, wordWrap=True)
        self.model = ProblemModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        read_only_rows(self.table)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.clicked.connect(self._clicked)
        fill(flat(QVBoxLayout(self)), self.summary, (self.table, 1))

    def set_problems(self, problems: list[Problem], checked: int, total: int) -> None:
        self.model.set_problems(problems)
        excluded = len({p.path for p in problems if p.excluded})
        converted = len({p.path for p in problems if not p.excluded} - {p.path for p in problems if p.excluded})
        scope = f"{total} images" if checked >= total else f"{checked} of {total} images"
        if not problems:
            self.summary.setText(f"No problems found in {scope}." if checked else NOT_CHECKED)
            return
        self.summary.setText(f"Checked {scope}: {len({p.path for p in problems})} with problems — {excluded} "
                             f"cannot be used (excluded from training), {converted} will be converted.")

    def set_progress(self, done: int, total: int) -> None:
        self.summary.setText(f"Checking images… {done} of {total}")

    def _clicked(self, index) -> None:
        path: Path | None = self.model.path_at(index.row())
        if path is not None:
            self.image_chosen.emit(path)
