"""Tag → number of images, as a two-column table model (sortable through a proxy)."""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

HEADERS = ("Tag", "Images")


class TagFrequencyModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, int]] = []

    def set_frequencies(self, counts: Counter[str]) -> None:
        self.beginResetModel()
        self.rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
        self.endResetModel()

    def tags_by_frequency(self) -> list[str]:
        return [t for t, _ in self.rows]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else 2

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        tag, count = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return tag if index.column() == 0 else count
        if role == Qt.ItemDataRole.UserRole:
            return tag
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt override
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None
