"""Small builders for what nearly every widget here sets up the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QFileDialog, QPushButton,
                               QSpinBox, QTableView, QToolButton, QWidget)


def button(text: str, tip: str, slot: Callable[..., Any] | None = None, *,
           kind: type[QAbstractButton] = QPushButton, **properties: Any) -> Any:
    """A button with its tooltip and Qt `properties`, its click connected to `slot` (a method or a signal)."""
    made = kind(text=text, toolTip=tip, **properties)
    if slot is not None:
        made.clicked.connect(slot)
    return made


def disclosure(text: str, body: QWidget) -> QToolButton:
    """A flat ▸ toggle that shows `body` (hidden until then) and turns to ▾ while it is open."""
    toggle = QToolButton(text=text, checkable=True, autoRaise=True, arrowType=Qt.ArrowType.RightArrow,
                         toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    body.setVisible(False)

    def flip(on: bool) -> None:
        body.setVisible(on)
        toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    toggle.toggled.connect(flip)
    return toggle


def read_only_rows(view: QTableView) -> None:
    """A list a row is picked from, one at a time, nothing edited in place, no row numbers."""
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()


def rank_box(tip: str = "", **properties: Any) -> QSpinBox:
    """The rank of an SVD-refactored LoRA (a plain copy, a merged mix)."""
    return QSpinBox(minimum=1, maximum=1024, value=32, toolTip=tip, **properties)


def ask_save_path(parent: QWidget, title: str, suggestion: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, title, suggestion, "safetensors (*.safetensors)")
    return path
