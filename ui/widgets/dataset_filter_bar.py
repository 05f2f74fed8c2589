"""Above the grid: filter by text, by tag and by status, sort, and zoom the thumbnails."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QSlider, QToolButton, QWidget

from ui.models.dataset_model import SORT_KEYS, STATUS_FILTERS
from ui.widgets.build import flat
from ui.widgets.dataset_grid import MAX_SIDE, MIN_SIDE


class DatasetFilterBar(QWidget):
    text_changed = Signal(str)
    status_changed = Signal(str)
    sort_changed = Signal(str, bool)  # key, descending
    zoom_changed = Signal(int)
    tag_cleared = Signal()

    def __init__(self, parent: QWidget | None = None, side: int = 128) -> None:
        super().__init__(parent)
        layout = flat(QHBoxLayout(self))
        self.text = QLineEdit()
        self.text.setPlaceholderText("Filter by caption or file name…")
        self.text.setClearButtonEnabled(True)
        # the placeholder says what the field filters by: never cut to "Filter by c…" (issue 18)
        metrics = self.text.fontMetrics()
        self.text.setMinimumWidth(metrics.horizontalAdvance(self.text.placeholderText()) + 2 * metrics.height())
        layout.addWidget(self.text, 2)
        self.tag = QToolButton()
        self.tag.setToolTip("Showing only images with this tag; click to show all")
        self.tag.clicked.connect(self.clear_tag)
        self.tag.hide()
        layout.addWidget(self.tag)
        self.status = QComboBox()
        self.status.addItems(list(STATUS_FILTERS))
        self.status.currentTextChanged.connect(self.status_changed)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Sort"))
        self.sort = QComboBox()
        self.sort.addItems(list(SORT_KEYS))
        layout.addWidget(self.sort)
        self.descending = QToolButton(text="↑", checkable=True)
        self.descending.setToolTip("Reverse the order")
        self.descending.toggled.connect(lambda on: self.descending.setText("↓" if on else "↑"))
        self.descending.toggled.connect(self._sort)
        self.sort.currentTextChanged.connect(self._sort)
        layout.addWidget(self.descending)
        layout.addWidget(QLabel("Size"))
        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(MIN_SIDE, MAX_SIDE)
        self.zoom.setSingleStep(16)
        self.zoom.setPageStep(32)
        self.zoom.setValue(side)
        self.zoom.setFixedWidth(120)
        self.zoom.setToolTip("Thumbnail size (Ctrl+wheel over the grid)")
        self.zoom.valueChanged.connect(self.zoom_changed)
        layout.addWidget(self.zoom)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(200)
        self._debounce.timeout.connect(lambda: self.text_changed.emit(self.text.text()))
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
