"""The dataset's folders: how many images each holds and its repeats per epoch (editable).

A kohya folder `10_name` starts at 10 repeats; changing the number here is stored in the project's
dataset.json rather than renaming the user's folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QSpinBox, QTableWidget, QTableWidgetItem,
                               QToolButton, QVBoxLayout, QWidget)

from ui.layout import flat
from ui.widgets.build import button


class FolderList(QWidget):
    repeats_changed = Signal(object, int)  # (folder, repeats)
    remove_requested = Signal(object)  # a root folder
    folder_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 4, editTriggers=QAbstractItemView.EditTrigger.NoEditTriggers,
                                  selectionBehavior=QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setHorizontalHeaderLabels(["Folder", "Images", "Repeats", ""])
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.folder_chosen.emit(self._folders[row][0]))
        flat(QVBoxLayout(self)).addWidget(self.table)
        self._folders: list[tuple[Path, bool]] = []

    def set_folders(self, rows: list[tuple[Path, bool, int, int]]) -> None:
        """rows: (folder, is a root folder the user added, image count, repeats)."""
        self.table.setRowCount(len(rows))
        self._folders = [(f, root) for f, root, _, _ in rows]
        for i, (folder, root, count, repeats) in enumerate(rows):
            name = QTableWidgetItem(str(folder) if root else f"   └ {folder.name}")
            name.setToolTip(str(folder))
            self.table.setItem(i, 0, name)
            num = QTableWidgetItem(str(count))
            num.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 1, num)
            spin = QSpinBox(minimum=1, maximum=1000, value=repeats,
                            toolTip="Times each image of this folder is seen per epoch")
            spin.valueChanged.connect(lambda v, f=folder: self.repeats_changed.emit(f, v))
            self.table.setCellWidget(i, 2, spin)
            if root:
                remove = button("Remove", "Stop using this folder (the files stay where they are)",
                                lambda _=False, f=folder: self.remove_requested.emit(f), kind=QToolButton)
                self.table.setCellWidget(i, 3, remove)

    def spin_for(self, folder: Path) -> QSpinBox | None:
        for i, (f, _) in enumerate(self._folders):
            if f == folder:
                return self.table.cellWidget(i, 2)
        return None
