"""A message strip over the run area: what happened, what to do about it, and a button that does it.

Its colours come from the theme's stylesheet (`role="banner-<kind>"`), so a theme switch recolours it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from ui.layout import column, fill
from ui.theme import BANNER_KINDS, set_role
from ui.widgets.build import button


def dismiss_button(tooltip: str, hides: QWidget) -> QToolButton:
    """The flat ✕ at the end of a message strip; one look for every strip (banner, preset note)."""
    return button("✕", tooltip, hides.hide, kind=QToolButton, autoRaise=True)


class StatusBanner(QFrame):
    action_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        self.title = QLabel(wordWrap=True)
        # a hint may list several problems, one per line
        self.hint = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.action = QPushButton()
        self.action.clicked.connect(self.action_clicked)
        fill(QHBoxLayout(self), (column(self.title, self.hint), 1), self.action,
             dismiss_button("Dismiss", self)).setContentsMargins(10, 6, 6, 6)
        self.hide()

    def show_message(self, kind: str, title: str, hint: str = "", action: str = "") -> None:
        self.kind = kind
        set_role(self, f"banner-{kind if kind in BANNER_KINDS else 'info'}")
        for label in (self.title, self.hint):  # children are polished with the parent's role only on restyle
            label.style().unpolish(label)
            label.style().polish(label)
        self.title.setText(f"<b>{html.escape(title)}</b>")
        for widget, text in ((self.hint, hint), (self.action, action)):
            widget.setText(text)
            widget.setVisible(bool(text))
        self.show()

    def text(self) -> str:
        return f"{self.title.text()} {self.hint.text()}"
