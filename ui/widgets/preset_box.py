"""The Train panel's preset box: each preset by id and what it is for, and the preset in effect.

The closed box names the preset whose values the form has, or reads "custom" once one was changed.
Choosing an entry asks for that preset (`preset_chosen`); the panel applies it and lists what changed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from studio.config import ProjectConfig
from studio.preset_info import Preset, bundled_presets, matching_preset, short_description

CUSTOM = "custom"


def preset_item_text(preset: Preset) -> str:
    summary = short_description(preset.description)
    return f"{preset.name} — {summary}" if summary else preset.name


class PresetBox(QComboBox):
    preset_chosen = Signal(str)  # the id of the preset the user picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, toolTip=(
            "The preset the settings match, or “custom”. Choose one to apply its settings over the "
            "form (only the settings it names change; the note below lists them, with Undo)."))
        self.presets = bundled_presets()
        items = [(preset_item_text(p), p.name, p.description or p.name) for p in self.presets]
        for text, name, tip in [(CUSTOM, None, "Settings that match no preset"), *items]:
            self.addItem(text, name)
            self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        view = self.view()
        metrics = view.fontMetrics()
        widest = max(metrics.horizontalAdvance(self.itemText(i)) for i in range(self.count()))
        view.setMinimumWidth(widest + 3 * metrics.averageCharWidth() + 2 * view.frameWidth())  # item margins
        self._shown = 0
        self.activated.connect(self._activated)

    def in_effect(self) -> str:
        """The id of the preset shown, or "custom"."""
        return self.itemData(self._shown) or CUSTOM

    def show_config(self, cfg: ProjectConfig) -> None:
        preset = matching_preset(cfg, self.presets)
        self._shown = self.findData(preset.name) if preset is not None else 0
        self.setCurrentIndex(self._shown)

    def _activated(self, index: int) -> None:
        name = self.itemData(index)
        self.setCurrentIndex(self._shown)  # until the preset is in the form, the box shows what is in effect
        if name:
            self.preset_chosen.emit(name)
