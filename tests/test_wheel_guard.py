"""No value changes without intent (issue 18): the wheel scrolls the Train form, not the numbers in it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea, QSpinBox, QVBoxLayout, QWidget

pytestmark = pytest.mark.gui


def wheel(widget: QWidget, notches: int = -1) -> bool:
    """One wheel notch over the widget's centre, as the mouse sends it (negative: towards the user)."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


@pytest.fixture
def form(qtbot):
    """The real Train form in a short scroll area, as in the Train panel."""
    from ui.widgets.config_form import ConfigForm

    area = QScrollArea()
    qtbot.addWidget(area)
    form = ConfigForm()
    area.setWidget(form)
    area.setWidgetResizable(True)
    area.resize(500, 300)
    area.show()
    qtbot.waitExposed(area)
    return area, form


def _show(area: QScrollArea, w: QWidget) -> None:
    area.ensureWidgetVisible(w, 10, 60)
    QApplication.processEvents()


def test_wheel_over_an_unfocused_spin_box_scrolls_the_form(qtbot, form):
    area, cfg_form = form
    spin = cfg_form.editor("network", "rank").focus_widget()
    assert isinstance(spin, QSpinBox)
    spin.setValue(8)
    _show(area, spin)
    before = area.verticalScrollBar().value()
    wheel(spin, -1)
    assert spin.value() == 8
    assert area.verticalScrollBar().value() > before  # the form scrolled instead


def test_wheel_over_an_unfocused_combo_box_leaves_it(qtbot, form):
    area, cfg_form = form
    combo = cfg_form.editor("optimizer", "name").focus_widget()
    assert isinstance(combo, QComboBox)
    _show(area, combo)
    index = combo.currentIndex()
    wheel(combo, -1)
    assert combo.currentIndex() == index


def test_wheel_changes_a_focused_spin_box(qtbot, form):
    area, cfg_form = form
    spin = cfg_form.editor("schedule", "max_steps").focus_widget()
    spin.setValue(12)
    _show(area, spin)
    area.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    wheel(spin, 1)
    assert spin.value() == 13


def test_the_main_window_guards_every_panel(qtbot, tmp_path):
    from tests.train_gui_helpers import close_window, open_window

    window = open_window(qtbot, tmp_path, None, start_worker=False)
    try:
        for panel in (window.dataset_panel, window.train_panel, window.mixer_panel):
            boxes = [w for w in panel.findChildren(QWidget) if isinstance(w, (QSpinBox, QComboBox))]
            assert boxes and all(w.property("loraStudioWheelGuard") for w in boxes), panel
        preset = window.train_panel.presets
        preset.setCurrentIndex(0)
        wheel(preset, -1)
        assert preset.currentIndex() == 0
    finally:
        close_window(window)


def test_mixer_strength_keeps_its_value_under_the_wheel(qtbot):
    from ui.widgets.strength_control import StrengthControl

    host = QWidget()
    qtbot.addWidget(host)
    QVBoxLayout(host).addWidget(control := StrengthControl(0.75))
    host.show()
    wheel(control.box, 1)
    wheel(control.slider, 1)
    assert control.value() == pytest.approx(0.75)
