"""The note under the preset box after a preset was applied: exactly what it changed, and Undo.

"sd15-character changed 3 settings: rank 8 → 32, alpha 4 → 16, train text encoder off → on" — in the
form's own labels, so a user can find each one. Undo is the panel's.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from studio.preset_info import Change
from ui.layout import fill
from ui.theme import set_role
from ui.widgets.build import button
from ui.widgets.config_form import label_for
from ui.widgets.status_banner import dismiss_button


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "; ".join(map(str, value)) if value else "none"
    return str(value) if value != "" else "none"


def field_words(section: str, key: str) -> str:
    """The form's label inside a sentence: "Rank" → "rank", but "UNet learning rate" and "LR schedule" stay."""
    label = label_for(section, key)
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def changes_sentence(preset: str, changes: list[Change]) -> str:
    if not changes:
        return f"{preset} changed nothing: the settings already had its values."
    listed = ", ".join(f"{field_words(c.section, c.key)} {show_value(c.old)} → {show_value(c.new)}" for c in changes)
    return f"{preset} changed {len(changes)} setting{'s' if len(changes) != 1 else ''}: {listed}"


class PresetNote(QFrame):
    undo_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_role(self, "banner-info")
        self.changes: list[Change] = []
        self.text = QLabel(wordWrap=True)
        self.undo_button = button("Undo", "Put back the values these settings had before the preset",
                                  self.undo_clicked)
        fill(QHBoxLayout(self), (self.text, 1), self.undo_button,
             dismiss_button("Dismiss (keep the preset's values)", self)).setContentsMargins(8, 4, 4, 4)
        self.hide()

    def show_changes(self, preset: str, changes: list[Change]) -> None:
        self.changes = list(changes)
        self.text.setText(html.escape(changes_sentence(preset, changes)))
        self.undo_button.setVisible(bool(changes))
        self.show()
