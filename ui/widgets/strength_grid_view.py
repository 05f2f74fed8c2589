"""The strength grid tab: pick two LoRAs and their strengths, render every combination, see them labelled."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ui.layout import fill, row
from ui.widgets.mix_preview_view import MixPreviewView

DEFAULT_VALUES = "0, 0.5, 1"
NONE = "(none)"


def parse_values(text: str) -> tuple[float, ...]:
    """`0, 0.5, 1` → (0.0, 0.5, 1.0); ValueError naming the bad part."""
    values = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(f"`{part}` is not a number") from None
    if not values:
        raise ValueError("give at least one strength")
    return tuple(values)


class StrengthGridView(QWidget):
    render_requested = Signal(int, tuple, int, tuple)  # x LoRA, x values, y LoRA (-1: none), y values

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout()
        self.x_lora, self.y_lora = QComboBox(), QComboBox()
        self.x_values, self.y_values = QLineEdit(DEFAULT_VALUES), QLineEdit(DEFAULT_VALUES)
        for combo, values, label in ((self.x_lora, self.x_values, "Across"), (self.y_lora, self.y_values, "Down")):
            values.setToolTip("strengths, comma-separated")
            form.addRow(label, row((combo, 1), (values, 1)))
        self.render_button = QPushButton("Render grid", clicked=self._render)
        self.view = MixPreviewView(placeholder="Choose two LoRAs and render a grid")
        fill(QVBoxLayout(self), form, row(self.render_button, None), (self.view, 1))
        self.set_loras([])

    def set_loras(self, names: Sequence[str]) -> None:
        """Offer these LoRAs (in mix order) on both axes, keeping the choices where possible."""
        x, y = self.x_lora.currentIndex(), self.y_lora.currentIndex()
        for combo, items in ((self.x_lora, list(names)), (self.y_lora, [NONE, *names])):
            combo.clear()
            combo.addItems(items)
        self.x_lora.setCurrentIndex(x if 0 <= x < len(names) else 0)
        self.y_lora.setCurrentIndex(y if 0 <= y <= len(names) and y != 0 else (2 if len(names) > 1 else 0))
        self.render_button.setEnabled(len(names) > 0)

    def _render(self) -> None:
        try:
            xv = parse_values(self.x_values.text())
            y = self.y_lora.currentIndex() - 1
            yv = parse_values(self.y_values.text()) if y >= 0 else ()
        except ValueError as exc:
            self.view.set_busy(f"Strengths: {exc}")
            return
        if y == self.x_lora.currentIndex():
            self.view.set_busy("Choose two different LoRAs for the two axes")
            return
        self.render_requested.emit(self.x_lora.currentIndex(), xv, y, yv)
