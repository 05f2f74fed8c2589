"""A strength slider from −2 to +2 with a numeric box beside it, both in steps of 0.05.

The slider is for feel, the box for exact numbers; they stay in step without echoing each other, and
`valueChanged` fires once per user change.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QWidget

from ui.wheel_guard import guard_wheel
from ui.widgets.build import flat

STEP = 0.05
LIMIT = 2.0


class StrengthControl(QWidget):
    valueChanged = Signal(float)

    def __init__(self, value: float = 1.0, parent: QWidget | None = None, *, label: str = "strength") -> None:
        super().__init__(parent)
        layout = flat(QHBoxLayout(self))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        steps = round(LIMIT / STEP)
        self.slider.setRange(-steps, steps)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(4)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(round(1 / STEP) // 2)
        self.slider.setAccessibleName(label)
        self.box = QDoubleSpinBox()
        self.box.setRange(-LIMIT, LIMIT)
        self.box.setSingleStep(STEP)
        self.box.setDecimals(2)
        self.box.setAccessibleName(label)
        self.box.setFixedWidth(72)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.box)
        guard_wheel(self.slider)  # mixer rows are added after the window guarded its widgets
        guard_wheel(self.box)
        self.setValue(value)
        self.slider.valueChanged.connect(self._from_slider)
        self.box.valueChanged.connect(self._from_box)

    def value(self) -> float:
        return round(self.box.value(), 2)

    def setValue(self, value: float) -> None:
        value = max(-LIMIT, min(LIMIT, round(value / STEP) * STEP))
        for w in (self.slider, self.box):
            w.blockSignals(True)
        self.slider.setValue(round(value / STEP))
        self.box.setValue(value)
        for w in (self.slider, self.box):
            w.blockSignals(False)

    def _from_slider(self, ticks: int) -> None:
        self.box.blockSignals(True)
        self.box.setValue(ticks * STEP)
        self.box.blockSignals(False)
        self.valueChanged.emit(self.value())

    def _from_box(self, value: float) -> None:
        snapped = round(value / STEP)
        self.slider.blockSignals(True)
        self.slider.setValue(snapped)
        self.slider.blockSignals(False)
        self.valueChanged.emit(self.value())
