"""A message strip over the run area: what happened, what to do about it, and a button that does it."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

STYLES = {
    "info": "background:#e8f1fb; color:#17324d; border:1px solid #9cc3ea;",
    "success": "background:#e9f6ec; color:#1d4425; border:1px solid #96cfa3;",
    "warning": "background:#fff6e0; color:#4d3a08; border:1px solid #e8c66a;",
    "error": "background:#fbeaea; color:#5a1616; border:1px solid #e29b9b;",
}


class StatusBanner(QFrame):
    action_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        column = QVBoxLayout()
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        column.addWidget(self.title)
        column.addWidget(self.hint)
        layout.addLayout(column, 1)
        self.action = QPushButton()
        self.action.clicked.connect(self.action_clicked)
        layout.addWidget(self.action)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self.hide()

    def show_message(self, kind: str, title: str, hint: str = "", action: str = "") -> None:
        self.kind = kind
        self.setStyleSheet(f"StatusBanner {{{STYLES.get(kind, STYLES['info'])} border-radius:4px;}}"
                           "QLabel { background: transparent; border: none; }")
        self.title.setText(f"<b>{html.escape(title)}</b>")
        self.hint.setText(html.escape(hint))
        self.hint.setVisible(bool(hint))
        self.action.setText(action)
        self.action.setVisible(bool(action))
        self.show()

    def set_action(self, text: str) -> None:
        self.action.setText(text)
        self.action.setVisible(bool(text))

    def text(self) -> str:
        return f"{self.title.text()} {self.hint.text()}"
