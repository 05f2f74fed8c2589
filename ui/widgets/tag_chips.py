"""A caption shown as tag chips: each tag a small button with ×, plus a field that adds tags with
autocomplete from the dataset's tag frequencies (most frequent first)."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (QCompleter, QHBoxLayout, QLineEdit, QScrollArea, QToolButton, QVBoxLayout,
                               QWidget)

from studio.dataset.tags import add_tag, remove_tag, split_tags
from ui.widgets.build import flat
from ui.widgets.flow_layout import FlowLayout

CHIP_STYLE = ("QToolButton { border: 1px solid palette(mid); border-radius: 10px; padding: 2px 8px;"
              " background: palette(button); }"
              "QToolButton:hover { border-color: #d9534f; }")


class TagChips(QWidget):
    caption_changed = Signal(str)  # the whole caption after a chip was added or removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._caption = ""
        layout = flat(QVBoxLayout(self))
        self._chips_host = QWidget()
        self._flow = FlowLayout(self._chips_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._chips_host)
        scroll.setFrameShape(QScrollArea.Shape.StyledPanel)
        layout.addWidget(scroll, 1)
        row = QHBoxLayout()
        self.input = QLineEdit()
        self.input.setPlaceholderText("Add a tag (Enter) — suggestions come from this dataset")
        self.input.returnPressed.connect(self._add_from_input)
        self._completions = QStringListModel(self)
        completer = QCompleter(self._completions, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setModelSorting(QCompleter.ModelSorting.UnsortedModel)  # keep most frequent first
        completer.setMaxVisibleItems(12)
        self.input.setCompleter(completer)
        self.completer = completer
        row.addWidget(self.input)
        layout.addLayout(row)

    def set_caption(self, caption: str) -> None:
        self._caption = caption or ""
        self._rebuild()

    def caption(self) -> str:
        return self._caption

    def tags(self) -> list[str]:
        return split_tags(self._caption)

    def set_completions(self, tags_by_frequency: list[str]) -> None:
        self._completions.setStringList(tags_by_frequency)

    def add(self, tag: str) -> None:
        new = add_tag(self._caption, tag)
        if new != self._caption:
            self._caption = new
            self._rebuild()
            self.caption_changed.emit(self._caption)

    def remove(self, tag: str) -> None:
        new = remove_tag(self._caption, tag)
        if new != self._caption:
            self._caption = new
            self._rebuild()
            self.caption_changed.emit(self._caption)

    def _add_from_input(self) -> None:
        text = self.input.text()
        self.input.clear()
        for tag in split_tags(text):  # "a, b" adds two tags
            self.add(tag)

    def _rebuild(self) -> None:
        while self._flow.count():
            item = self._flow.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        for tag in split_tags(self._caption):
            chip = QToolButton()
            chip.setText(f"{tag}  ×")
            chip.setToolTip(f"Remove “{tag}”")
            chip.setStyleSheet(CHIP_STYLE)
            chip.setCursor(Qt.CursorShape.PointingHandCursor)
            chip.clicked.connect(lambda _=False, t=tag: self.remove(t))
            self._flow.addWidget(chip)
        self._chips_host.updateGeometry()

    def chip_texts(self) -> list[str]:
        return [self._flow.itemAt(i).widget().text().removesuffix("  ×") for i in range(self._flow.count())]
