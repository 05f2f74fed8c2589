"""Per-block weights for one LoRA: a preset menu (lora-block-weight's names) and the numbers themselves.

Users who touch it know the presets and comma lists from the WebUI extension, so both are accepted as
written there. An invalid list is shown in red and ignored until it parses.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from studio.errors import ConfigError
from studio.mix.blocks import PRESET_NAMES, block_ids, parse_weights
from ui.layout import fill, flat, row
from ui.theme import set_role


NO_BLOCKS = "(all 1)"


class BlockWeightsEditor(QWidget):
    changed = Signal()

    def __init__(self, family: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.family = family if family in ("sd1", "sd2", "sd2-v", "sdxl") else "sd1"
        self._weights: dict[str, float] = {}
        self.preset = QComboBox(toolTip="lora-block-weight presets: INS/IND = shallow/deep input blocks, "
                                        "MIDD = the middle, OUTD/OUTS = deep/shallow output blocks; "
                                        "BASE is the text encoder")
        self.preset.addItems([NO_BLOCKS, *PRESET_NAMES])
        ids = ", ".join(block_ids(self.family, full=False))
        self.values = QLineEdit(placeholderText="comma-separated weights, e.g. 1,0,0,0,1,1,1,1,…",
                                toolTip=f"{len(block_ids(self.family, full=False))} values ({ids}) "
                                        f"or {len(block_ids(self.family))} (every block)")
        self.ids_label = set_role(QLabel(ids, wordWrap=True), "hint")
        fill(flat(QVBoxLayout(self)), row(QLabel("Preset"), self.preset, (self.values, 1)), self.ids_label)
        self.preset.currentTextChanged.connect(self._preset_chosen)
        self.values.editingFinished.connect(self._typed)

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_preset(self, name: str) -> None:
        self.preset.setCurrentText(name)

    def _preset_chosen(self, name: str) -> None:
        weights = {} if name == NO_BLOCKS else parse_weights(name, self.family)
        self.values.setText(",".join(f"{v:g}" for v in weights.values()))
        self._set(weights)

    def _typed(self) -> None:
        text = self.values.text().strip()
        if not text:
            self._set({})
            return
        try:
            weights = parse_weights(text, self.family)
        except ConfigError as exc:
            self.values.setStyleSheet("color: #b00020;")
            self.values.setToolTip(str(exc))
            return
        self.values.setStyleSheet("")
        self._set(weights)

    def _set(self, weights: dict[str, float]) -> None:
        if weights != self._weights:
            self._weights = weights
            self.changed.emit()
