"""The dataset's tags with how many images carry each; the entry point for per-tag batch operations.

The rename, remove and put-first requests go to the panel, which makes them undoable edits.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import QHeaderView, QLineEdit, QMenu, QTableView, QVBoxLayout, QWidget

from ui.layout import fill, flat
from ui.models.tag_frequency_model import TagFrequencyModel
from ui.widgets.build import read_only_rows


class TagFrequencyTable(QWidget):
    filter_requested = Signal(str)
    rename_requested = Signal(str)
    remove_requested = Signal(str)
    first_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TagFrequencyModel(self)
        self.proxy = QSortFilterProxyModel(self, filterCaseSensitivity=Qt.CaseSensitivity.CaseInsensitive,
                                           filterKeyColumn=0, sortRole=Qt.ItemDataRole.DisplayRole)
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit(placeholderText="Find a tag…", clearButtonEnabled=True)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView(contextMenuPolicy=Qt.ContextMenuPolicy.CustomContextMenu, sortingEnabled=True)
        self.table.setModel(self.proxy)
        self.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        read_only_rows(self.table)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(lambda idx: self.filter_requested.emit(self._tag(idx.row())))
        self.table.customContextMenuRequested.connect(self._menu)
        fill(flat(QVBoxLayout(self)), self.search, (self.table, 1))

    def set_frequencies(self, counts: Counter[str]) -> None:
        self.model.set_frequencies(counts)
        self.proxy.sort(self.table.horizontalHeader().sortIndicatorSection(),
                        self.table.horizontalHeader().sortIndicatorOrder())

    def _tag(self, proxy_row: int) -> str:
        return self.proxy.index(proxy_row, 0).data(Qt.ItemDataRole.UserRole)

    def _menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        tag = self._tag(index.row())
        menu = QMenu(self)
        menu.addAction(f"Show images with “{tag}”", lambda: self.filter_requested.emit(tag))
        menu.addSeparator()
        menu.addAction(f"Rename “{tag}” everywhere…", lambda: self.rename_requested.emit(tag))
        menu.addAction(f"Remove “{tag}” everywhere", lambda: self.remove_requested.emit(tag))
        menu.addAction(f"Put “{tag}” first everywhere (trigger word)", lambda: self.first_requested.emit(tag))
        menu.exec(self.table.viewport().mapToGlobal(pos))
