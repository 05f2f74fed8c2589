"""One LoRA in the mixer: what it is (name, family, rank, trigger words) and how strongly it applies.

It is built from a header-only `LoraPeek`, so it appears as soon as the file is dropped; the full read
and the checks happen in the worker.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QGridLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from studio.formats.family import family_label, same_architecture
from studio.formats.peek import LoraPeek
from studio.mix.request import MixEntry
from ui.layout import fill, row
from ui.widgets.block_weights_editor import BlockWeightsEditor
from ui.widgets.build import disclosure
from ui.widgets.strength_control import StrengthControl


class LoraMixRow(QFrame):
    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, info: LoraPeek, parent: QWidget | None = None) -> None:
        super().__init__(parent, frameShape=QFrame.Shape.StyledPanel, objectName="loraMixRow")
        self.info = info
        self.enabled = QCheckBox(checked=True, toolTip="Include this LoRA in the mix")
        self.name = QLabel(f"<b>{html.escape(info.name)}</b>", toolTip=info.path)
        ranks = "/".join(map(str, info.ranks)) or "?"
        algos = "+".join(a for a in info.algorithms if a != "lora")
        self.details = QLabel(f"{family_label(info.family)} · rank {ranks}" + (f" · {algos}" if algos else ""))
        self.details.setProperty("role", "hint")
        self.remove = QToolButton(text="✕", autoRaise=True, toolTip="Remove from the mix",
                                  clicked=lambda: self.remove_requested.emit(self))

        self.triggers = QLabel(wordWrap=True,
                               textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        if info.trigger_words:
            self.triggers.setText("Trigger words: " + ", ".join(html.escape(w) for w in info.trigger_words))
        self.triggers.setVisible(bool(info.trigger_words))
        self.warning = QLabel(wordWrap=True, styleSheet="color: #b00020;", visible=False)

        self.strength = StrengthControl(1.0, label=f"{info.name} strength")
        self.split = QCheckBox("Separate UNet / text-encoder strengths")
        self.unet = StrengthControl(1.0, label=f"{info.name} UNet strength")
        self.te = StrengthControl(1.0, label=f"{info.name} text-encoder strength")
        self.unet_label, self.te_label = QLabel("UNet"), QLabel("Text enc.")
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Strength"), 0, 0)
        grid.addWidget(self.strength, 0, 1)
        grid.addWidget(self.split, 1, 0, 1, 2)
        for line, (label, control) in enumerate(((self.unet_label, self.unet), (self.te_label, self.te)), 2):
            grid.addWidget(label, line, 0)
            grid.addWidget(control, line, 1)

        self.blocks = BlockWeightsEditor(info.family)
        self.blocks_toggle = disclosure("Per-block weights", self.blocks)
        fill(QVBoxLayout(self), row(self.enabled, self.name, (self.details, 1), self.remove), self.triggers,
             self.warning, grid, self.blocks_toggle, self.blocks).setContentsMargins(8, 6, 8, 6)
        self._show_split(False)

        self.enabled.toggled.connect(self._toggled)
        for control in (self.strength, self.unet, self.te):
            control.valueChanged.connect(lambda _: self.changed.emit())
        self.split.toggled.connect(self._split_toggled)
        self.blocks.changed.connect(self.changed)

    # ---------------------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.info.path

    def entry(self) -> MixEntry:
        split = self.split.isChecked()
        return MixEntry(path=self.info.path, strength=self.strength.value(),
                        unet=self.unet.value() if split else None, te=self.te.value() if split else None,
                        blocks=tuple(self.blocks.weights().items()), enabled=self.enabled.isChecked())

    def check_family(self, family: str | None) -> bool:
        """Flag a LoRA made for another base family than the mix's; True when it fits."""
        fits = family is None or self.info.family == "unknown" or same_architecture(self.info.family, family)
        self.show_problem("" if fits else f"Made for {family_label(self.info.family)}, but the mix is "
                                          f"{family_label(family)}: it is left out of the preview")
        return fits

    def show_problem(self, text: str) -> None:
        self.warning.setText(text)
        self.warning.setVisible(bool(text))

    def _show_split(self, on: bool) -> None:
        for w in (self.unet, self.te, self.unet_label, self.te_label):
            w.setVisible(on)
        self.strength.setEnabled(not on)

    def _split_toggled(self, on: bool) -> None:
        if on:
            for w in (self.unet, self.te):
                w.setValue(self.strength.value())
        self._show_split(on)
        self.changed.emit()

    def _toggled(self, on: bool) -> None:
        for w in (self.strength, self.split, self.unet, self.te, self.blocks_toggle, self.blocks):
            w.setEnabled(on)
        if on:
            self._show_split(self.split.isChecked())
        self.changed.emit()

    def title(self) -> str:
        return self.info.name or Path(self.info.path).stem
