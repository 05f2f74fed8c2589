"""The Train panel's preset chooser: each preset by id and what it is for, its full description as tooltip.

The closed box always reads "Choose a preset…" (choosing one applies it and resets the box), so the longer
entries only appear in the open list, which is made wide enough for them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from studio.config import preset_names
from studio.preset_info import preset_description, short_description

PROMPT = "Choose a preset…"


def preset_item_text(name: str, description: str) -> str:
    summary = short_description(description)
    return f"{name} — {summary}" if summary else name


def fill_preset_box(box: QComboBox) -> None:
    """Fill `box` with the bundled presets; item data is the preset id (None for the prompt)."""
    box.clear()
    box.addItem(PROMPT, None)
    for name in preset_names():
        description = preset_description(name)
        box.addItem(preset_item_text(name, description), name)
        box.setItemData(box.count() - 1, description or name, Qt.ItemDataRole.ToolTipRole)
    view = box.view()
    metrics = view.fontMetrics()
    widest = max(metrics.horizontalAdvance(box.itemText(i)) for i in range(box.count()))
    view.setMinimumWidth(widest + 3 * metrics.averageCharWidth() + 2 * view.frameWidth())  # item margins
