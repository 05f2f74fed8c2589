"""Keyboard and menus (issue 18): Ctrl+1/2/3 and Ctrl+Tab switch panels; the menus hold every main action."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.test_first_run import close_app, fresh_user, start_app  # noqa: F401 - fresh_user is a fixture

pytestmark = pytest.mark.gui


@pytest.fixture
def app_window(qtbot, fresh_user):  # noqa: F811
    window, shell = start_app(qtbot)
    qtbot.waitUntil(lambda: shell.welcome is not None and shell.welcome.isVisible())  # a first run shows it
    shell.welcome.reject()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    yield window, shell
    for box in window.findChildren(QMessageBox):
        box.close()
    close_app(window)


def menu_entries(window) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for top in window.menuBar().actions():
        if top.menu() is not None:
            out[top.text().replace("&", "")] = [a.text().replace("&", "") for a in top.menu().actions()
                                                if a.isVisible() and not a.isSeparator()]
    return out


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_ctrl_numbers_and_ctrl_tab_switch_panels(qtbot, app_window):
    window, _ = app_window
    tabs = window.tabs
    focus = window.train_panel.form.editor("output", "name").focus_widget()  # typing in a field, as users do
    focus.setFocus()
    for key, panel in ((Qt.Key.Key_1, window.dataset_panel), (Qt.Key.Key_3, window.mixer_panel),
                       (Qt.Key.Key_2, window.train_panel)):
        qtbot.keyClick(QApplication.focusWidget() or window, key, Qt.KeyboardModifier.ControlModifier)
        assert tabs.currentWidget() is panel
    start = tabs.currentIndex()
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert tabs.currentIndex() == (start + 1) % 3
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert tabs.currentIndex() == (start + 2) % 3
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert tabs.currentIndex() == (start + 1) % 3
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Backtab,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert tabs.currentIndex() == start


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_menus_hold_every_main_action_with_shortcuts(qtbot, app_window):
    window, shell = app_window
    menus = menu_entries(window)
    assert "Export merged LoRA…" in menus["File"] and "Preferences…" in menus["File"]
    assert menus["View"][:3] == ["1 Dataset", "2 Train", "3 Mixer"]
    assert {"Next panel", "Previous panel", "Full Screen"} <= set(menus["View"])
    assert {"Start training", "Stop"} <= set(menus["Run"])
    assert {"Add LoRA…", "Export merged LoRA…"} <= set(menus["Mixer"])
    assert "Check images" in menus["Dataset"]
    assert menus["Help"] == ["Documentation", "About LoRA Studio"]

    def keys(action) -> set[str]:
        return {k.toString() for k in action.shortcuts()}

    assert QKeySequence("Ctrl+E").toString() in keys(window.export_action)
    assert QKeySequence("Ctrl+L").toString() in keys(window.add_lora_action)
    assert QKeySequence("Ctrl+Shift+I").toString() in keys(window.check_images_action)
    assert QKeySequence("Ctrl+Return").toString() in keys(window.start_action)
    assert QKeySequence("Ctrl+.").toString() in keys(window.stop_action)
    assert QKeySequence("Ctrl+,").toString() in keys(shell.actions.settings)
    assert window.docs_action.shortcuts()  # F1 (the platform's Help key)
    owners: dict[str, int] = {}
    for action in window.findChildren(type(window.export_action)):
        if action.isVisible():
            for key in set(keys(action)):
                owners[key] = owners.get(key, 0) + 1
    assert {k: n for k, n in owners.items() if n > 1} == {}  # no ambiguous shortcut: Qt would fire neither


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_menu_actions_reach_their_panel(qtbot, app_window, monkeypatch):
    window, _ = app_window
    chosen: list[bool] = []
    monkeypatch.setattr(window.mixer_panel, "choose_loras", lambda: chosen.append(True))
    window.tabs.setCurrentWidget(window.train_panel)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert chosen == [True] and window.tabs.currentWidget() is window.mixer_panel
    window.tabs.setCurrentWidget(window.train_panel)
    window.export_action.trigger()  # no LoRA yet: the status line says what to do
    assert window.tabs.currentWidget() is window.mixer_panel
    assert "Add a LoRA" in window.statusBar().currentMessage()


def test_documentation_opens_the_guide_or_says_why(qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QWidget

    from ui.documentation import documentation_file, open_documentation

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert documentation_file() is not None  # the checkout's README.md
    assert open_documentation(None) and opened[0].endswith("README.md")
    parent = QWidget()
    qtbot.addWidget(parent)
    assert not open_documentation(parent, root=tmp_path)  # a pip install: no guide on disk
    box = parent.findChild(QMessageBox, "documentationMissing")
    assert box is not None and "README.md" in box.text()


def test_panel_keys_leave_cmd_tab_to_macos():
    from ui.main_window import panel_keys

    assert panel_keys(1, "linux") == ("Ctrl+Tab", "Ctrl+PgDown")
    assert panel_keys(-1, "win32") == ("Ctrl+Shift+Tab", "Ctrl+PgUp")
    assert "Ctrl+Tab" not in panel_keys(1, "darwin") and "Meta+Tab" in panel_keys(1, "darwin")
