"""Above the grid: filter by text, by tag and by status, sort, and zoom the thumbnails."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QSlider, QToolButton, QWidget

from ui.models.dataset_model import SORT_KEYS, STATUS_FILTERS
from ui.layout import flat, row

from ui.widgets.dataset_grid import MAX_SIDE, MIN_SIDE


class DatasetFilterBar(QWidget):
    text_changed = Signal(str)
    status_changed = Signal(str)
    sort_changed = Signal(str, bool)  # key, descending
    zoom_changed = Signal(int)
    tag_cleared = Signal()

    def __init__(self, parent: QWidget | None = None, side: int = 128) -> None:
        super().__init__(parent)
        self.text = QLineEdit(placeholderText="Filter by caption or file name…", clearButtonEnabled=True)
        # the placeholder says what the field filters by: never cut to "Filter by c…" (issue 18)
        metrics = self.text.fontMetrics()
        self.text.setMinimumWidth(metrics.horizontalAdvance(self.text.placeholderText()) + 2 * metrics.height())
        self.tag = QToolButton(toolTip="Showing only images with this tag; click to show all",
                               clicked=self.clear_tag, visible=False)
        self.status = QComboBox()
        self.status.addItems(list(STATUS_FILTERS))
        self.status.currentTextChanged.connect(self.status_changed)
        self.sort = QComboBox()
        self.sort.addItems(list(SORT_KEYS))
        self.descending = QToolButton(text="↑", checkable=True, toolTip="Reverse the order")
        self.descending.toggled.connect(lambda on: self.descending.setText("↓" if on else "↑"))
        self.descending.toggled.connect(self._sort)
        self.sort.currentTextChanged.connect(self._sort)
        self.zoom = QSlider(Qt.Orientation.Horizontal, minimum=MIN_SIDE, maximum=MAX_SIDE, singleStep=16,
                            pageStep=32, value=side, toolTip="Thumbnail size (Ctrl+wheel over the grid)")
        self.zoom.setFixedWidth(120)
        self.zoom.valueChanged.connect(self.zoom_changed)
        self.setLayout(flat(row((self.text, 2), self.tag, self.status, QLabel("Sort"), self.sort,
                                 self.descending, QLabel("Size"), self.zoom)))
        self._debounce = QTimer(self, singleShot=True, interval=200,
                                timeout=lambda: self.text_changed.emit(self.text.text()))
        self.text.textChanged.connect(self._debounce.start)

    def _sort(self, *_args) -> None:
        self.sort_changed.emit(self.sort.currentText(), self.descending.isChecked())

    def show_tag(self, tag: str) -> None:
        self.tag.setText(f"tag: {tag}  ✕")
        self.tag.show()

    def clear_tag(self) -> None:
        self.tag.hide()
        self.tag_cleared.emit()

    def step_zoom(self, direction: int) -> None:
        self.zoom.setValue(self.zoom.value() + direction * 16)
