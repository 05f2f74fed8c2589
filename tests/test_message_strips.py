"""The two message strips (the status banner, the preset note) share one ✕ button: same look, hides its strip."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from studio.preset_info import Change
from ui.widgets.preset_note import PresetNote
from ui.widgets.status_banner import StatusBanner


def _close_button(strip) -> QToolButton:
    buttons = [b for b in strip.findChildren(QToolButton) if b.text() == "✕"]
    assert len(buttons) == 1, [b.text() for b in strip.findChildren(QToolButton)]
    return buttons[0]


def test_the_banner_and_the_preset_note_are_dismissed_by_the_same_button(qtbot):
    banner, note = StatusBanner(), PresetNote()
    for strip in (banner, note):
        qtbot.addWidget(strip)
    banner.show_message("error", "Cannot start", "set a base model")
    note.show_changes("sd15-character", [Change("network", "rank", 8, 32)])
    assert banner.isVisible() and note.isVisible()
    tips = {}
    for strip in (banner, note):
        button = _close_button(strip)
        assert button.autoRaise()
        tips[type(strip).__name__] = button.toolTip()
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert not strip.isVisible()
    assert tips == {"StatusBanner": "Dismiss", "PresetNote": "Dismiss (keep the preset's values)"}
    assert note.changes == [Change("network", "rank", 8, 32)]  # dismissing keeps the preset's values


def test_the_banners_action_button_shows_its_text_and_its_click_reaches_the_window(qtbot):
    banner = StatusBanner()
    qtbot.addWidget(banner)
    banner.show_message("warning", "A run was interrupted", "resume it from step 120", action="Resume")
    assert banner.action.isVisible() and banner.action.text() == "Resume"
    with qtbot.waitSignal(banner.action_clicked, timeout=1000):
        qtbot.mouseClick(banner.action, Qt.MouseButton.LeftButton)
    banner.show_message("info", "Saved")
    assert not banner.action.isVisible()
