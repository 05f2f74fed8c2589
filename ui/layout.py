"""Box layouts in one call, so a dialog's code shows its nesting instead of a run of addWidget lines."""

from __future__ import annotations

from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLayout, QVBoxLayout


def fill(layout: QBoxLayout, *items) -> QBoxLayout:
    """Add each item in order: a widget or a layout, or `(it, stretch[, alignment])`; an int is a spacing,
    None a stretch."""
    for item in items:
        item, stretch, *alignment = item if isinstance(item, tuple) else (item, 0)
        if item is None:
            layout.addStretch(1)
        elif isinstance(item, int):
            layout.addSpacing(item)
        elif isinstance(item, QLayout):
            layout.addLayout(item, stretch)
        else:
            layout.addWidget(item, stretch, *alignment)
    return layout


def flat(layout: QBoxLayout) -> QBoxLayout:
    """`layout` without margins: the widget sits inside a panel's or a form's own margins."""
    layout.setContentsMargins(0, 0, 0, 0)
    return layout


def row(*items) -> QHBoxLayout:
    return fill(QHBoxLayout(), *items)


def column(*items) -> QVBoxLayout:
    return fill(QVBoxLayout(), *items)
