"""A caption shown as tag chips: each tag a small button with ×, plus a field that adds tags with
autocomplete from the dataset's tag frequencies (most frequent first)."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QCompleter, QLineEdit, QScrollArea, QToolButton, QVBoxLayout, QWidget

from studio.dataset.tags import add_tag, remove_tag, split_tags
from ui.layout import flat, row
from ui.widgets.build import button
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
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.StyledPanel)
        scroll.setWidget(self._chips_host)
        layout.addWidget(scroll, 1)
        self.input = QLineEdit(placeholderText="Add a tag (Enter) — suggestions come from this dataset")
        self.input.returnPressed.connect(self._add_from_input)
        self._completions = QStringListModel(self)
        self.completer = QCompleter(self._completions, self, maxVisibleItems=12,
                                    caseSensitivity=Qt.CaseSensitivity.CaseInsensitive,
                                    filterMode=Qt.MatchFlag.MatchContains,
                                    modelSorting=QCompleter.ModelSorting.UnsortedModel)  # most frequent first
        self.input.setCompleter(self.completer)
        layout.addLayout(row(self.input))

    def set_caption(self, caption: str) -> None:
        self._caption = caption or ""
        self._rebuild()

    def caption(self) -> str:
        return self._caption

    def set_completions(self, tags_by_frequency: list[str]) -> None:
        self._completions.setStringList(tags_by_frequency)

    def add(self, tag: str) -> None:
        self._edited(add_tag(self._caption, tag))

    def remove(self, tag: str) -> None:
        self._edited(remove_tag(self._caption, tag))

    def _edited(self, new: str) -> None:
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
            self._flow.addWidget(button(f"{tag}  ×", f"Remove “{tag}”", lambda _=False, t=tag: self.remove(t),
                                        kind=QToolButton, styleSheet=CHIP_STYLE,
                                        cursor=Qt.CursorShape.PointingHandCursor))
        self._chips_host.updateGeometry()

    def chip_texts(self) -> list[str]:
        return [self._flow.itemAt(i).widget().text().removesuffix("  ×") for i in range(self._flow.count())]
