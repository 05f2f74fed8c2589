"""A strength slider from −2 to +2 with a numeric box beside it, both in steps of 0.05.

They stay in step without echoing each other: `valueChanged` fires once per user change.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QWidget

from ui.layout import fill, flat
from ui.wheel_guard import guard_wheel


STEP = 0.05
LIMIT = 2.0


class StrengthControl(QWidget):
    valueChanged = Signal(float)

    def __init__(self, value: float = 1.0, parent: QWidget | None = None, *, label: str = "strength") -> None:
        super().__init__(parent)
        steps = round(LIMIT / STEP)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=-steps, maximum=steps, singleStep=1,
                              pageStep=4, tickPosition=QSlider.TickPosition.TicksBelow,
                              tickInterval=round(1 / STEP) // 2, accessibleName=label)
        self.box = QDoubleSpinBox(minimum=-LIMIT, maximum=LIMIT, singleStep=STEP, decimals=2,
                                  accessibleName=label)
        self.box.setFixedWidth(72)
        fill(flat(QHBoxLayout(self)), (self.slider, 1), self.box)
        guard_wheel(self.slider)  # mixer rows are added after the window guarded its widgets
        guard_wheel(self.box)
        self.setValue(value)
        self.slider.valueChanged.connect(self._from_slider)
        self.box.valueChanged.connect(self._from_box)

    def value(self) -> float:
        return round(self.box.value(), 2)

    def setValue(self, value: float) -> None:
        value = max(-LIMIT, min(LIMIT, round(value / STEP) * STEP))
        with QSignalBlocker(self.slider), QSignalBlocker(self.box):
            self.slider.setValue(round(value / STEP))
            self.box.setValue(value)

    def _from_slider(self, ticks: int) -> None:
        with QSignalBlocker(self.box):
            self.box.setValue(ticks * STEP)
        self.valueChanged.emit(self.value())

    def _from_box(self, value: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round(value / STEP))
        self.valueChanged.emit(self.value())
