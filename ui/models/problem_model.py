"""The image-check report as a table: file, what is wrong, and what training does about it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor

from studio.dataset.scan import Problem

HEADERS = ("File", "Problem", "Training", "Details")


class ProblemModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.problems: list[Problem] = []

    def set_problems(self, problems: list[Problem]) -> None:
        self.beginResetModel()
        self.problems = sorted(problems, key=lambda p: (not p.excluded, p.kind, str(p.path)))
        self.endResetModel()

    def path_at(self, row: int) -> Path | None:
        return self.problems[row].path if 0 <= row < len(self.problems) else None

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p = self.problems[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (p.path.name, p.kind, "excluded" if p.excluded else "converted", p.message)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{p.path}\n{p.message}"
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return QColor("#c0392b" if p.excluded else "#9a6b00")
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt override
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None
