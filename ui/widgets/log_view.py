"""The run's log: `log` events from the worker (which carry its logging records), coloured by level.

A bounded block count keeps a week-long run's log from growing the window's memory without end.
"""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

COLOURS = {"warning": "#c88a00", "error": "#d9534f", "critical": "#d9534f", "debug": "#888888"}
MAX_LINES = 5000


class LogView(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, readOnly=True, maximumBlockCount=MAX_LINES,
                         placeholderText="Messages from the run appear here.")
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.show_debug = False

    def add(self, level: str, text: str, when: float | None = None) -> None:
        level = level.lower()
        if level == "debug" and not self.show_debug:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(when or time.time()))
        body = html.escape(text.rstrip()).replace("\n", "<br>")
        colour = COLOURS.get(level)
        tag = f"<span style='color:{colour}'>{level}</span>" if colour else level
        self.appendHtml(f"<span style='color:#888'>{stamp}</span> {tag}: {body}")
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def text(self) -> str:
        return self.toPlainText()
