"""Acceptance 2 of issue 9: a first run walks welcome → demo project → the Train tab shows the demo settings,
and the app's settings survive a restart (config and data folders are temporary)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QPalette

from studio.config import load_project
from studio.paths import CONFIG_ENV, DATA_ENV, demo_project_dir
from ui.settings import load_settings

pytestmark = pytest.mark.gui


@pytest.fixture
def fresh_user(tmp_path, monkeypatch) -> Path:
    """A user who has never run LoRA Studio: empty config and data folders."""
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    yield tmp_path
    from ui.theme import apply_theme

    from PySide6.QtWidgets import QApplication
    apply_theme(QApplication.instance(), "light")  # leave the shared QApplication as other tests expect it


def start_app(qtbot, project: Path | None = None):
    """What `lora-studio` does (ui.app.main), without the worker process and the event loop."""
    from ui.app import open_main_window

    window, shell = open_main_window(project, start_worker=False)
    window.show()
    qtbot.waitUntil(lambda: window.project_loaded, timeout=10_000)
    shell.start(project)
    return window, shell


def close_app(window, timeout_s: float = 10.0) -> None:
    """Quit: MainWindow stops its jobs and its worker first, and closes on a later turn of the event loop."""
    import time

    from PySide6.QtWidgets import QApplication

    window.close()
    end = time.monotonic() + timeout_s
    while window.isVisible() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)
    assert not window.isVisible()


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_first_run_welcome_then_demo_then_train_tab(qtbot, fresh_user):
    window, shell = start_app(qtbot)
    # the welcome screen comes up by itself on a first run
    qtbot.waitUntil(lambda: shell.welcome is not None and shell.welcome.isVisible(), timeout=5000)
    welcome = shell.welcome
    qtbot.waitUntil(lambda: welcome.hardware is not None, timeout=30_000)  # detection finished
    assert welcome.recommendation.preset in {"demo", "sd15-character", "sdxl-12gb", "sdxl-character"}
    assert welcome.recent.count() == 0

    welcome.demo_button.click()
    project = demo_project_dir() / "project.toml"
    qtbot.waitUntil(lambda: window.project_file == project.resolve() and window.project_loaded, timeout=120_000)
    assert not welcome.isVisible()

    # the demo project exists in the user's data folder: settings, photos, a tiny model
    assert project.is_file()
    assert (demo_project_dir() / "model" / "model_index.json").is_file()
    assert any((demo_project_dir() / "dataset").rglob("*.jpg"))

    # the Train tab is in front and shows the demo settings
    panel = window.train_panel
    assert window.tabs.currentWidget() is panel
    assert panel.form.editor("schedule", "max_steps").value() == 40
    assert panel.form.editor("network", "rank").value() == 8
    assert panel.form.editor("dataset", "resolution").value() == 64
    assert panel.current_config() == load_project(project)
    assert "project.toml" in window.windowTitle()

    # the demo is now a recent project, saved at once; its exports go to the project folder
    assert load_settings().recent_projects[0] == str(project.resolve())
    assert shell.output_folder() == demo_project_dir().resolve()
    close_app(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_settings_survive_a_restart(qtbot, fresh_user, tmp_path):
    window, shell = start_app(qtbot)
    qtbot.waitUntil(lambda: shell.welcome is not None and shell.welcome.isVisible(), timeout=5000)
    welcome = shell.welcome
    welcome.show_at_startup.setChecked(False)
    welcome.reject()

    from dataclasses import replace

    shell.update_settings(replace(shell.settings, theme="dark", output_folder=str(tmp_path / "exports"),
                                  model_folders=(str(tmp_path / "models"),)))
    assert window.palette().color(QPalette.ColorRole.Window).name() == "#1e1d24"  # applied at once
    # not the default size, and within the offscreen screen (800 x 800) so restoring need not shrink it
    hint = window.minimumSizeHint()
    height = min(hint.height() + 23, 760)
    window.resize(hint.width(), height)
    size = window.size()
    close_app(window)
    assert (fresh_user / "config" / "settings.toml").is_file()
    assert (fresh_user / "config" / "window.ini").is_file()

    window2, shell2 = start_app(qtbot)
    try:
        s = shell2.settings
        assert s.theme == "dark" and s.show_welcome is False
        assert s.output_folder == str(tmp_path / "exports") and s.model_folders == (str(tmp_path / "models"),)
        assert shell2.theme == "dark"
        assert window2.size() == size and size.height() == height  # window state remembered
        qtbot.wait(50)
        assert shell2.welcome is None  # the user switched it off
        assert shell2.output_folder() == tmp_path / "exports"  # no project yet: the default output folder
    finally:
        close_app(window2)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_menus_of_the_desktop_app(qtbot, fresh_user):
    from PySide6.QtGui import QKeySequence

    window, shell = start_app(qtbot)
    try:
        titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
        assert titles[:3] == ["File", "Edit", "View"] and "Help" in titles
        owners: dict[str, int] = {}
        for action in window.findChildren(type(shell.actions.about)):
            for key in action.shortcuts():
                if action.isVisible():
                    owners[key.toString()] = owners.get(key.toString(), 0) + 1
        for key in ("Ctrl+O", "Ctrl+S", "Ctrl+Z", "Ctrl+Shift+Z", "F11", "Ctrl+N"):
            assert owners.get(QKeySequence(key).toString()) == 1, key  # present, and not ambiguous
        about = [a for a in window.findChildren(type(shell.actions.about))
                 if "about" in a.text().lower() and a.isVisible()]
        assert about == [shell.actions.about]  # one About box, the one with every version
        if shell.welcome is not None:
            shell.welcome.reject()
        shell.actions.full_screen.trigger()
        qtbot.waitUntil(window.isFullScreen)
        shell.actions.full_screen.trigger()
        qtbot.waitUntil(lambda: not window.isFullScreen())
    finally:
        close_app(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_gui_demo_flag_opens_the_demo_without_the_welcome(qtbot, fresh_user):
    from ui.app import open_main_window, parse_args

    args = parse_args(["--demo"])
    assert args.demo and args.project is None
    window, shell = open_main_window(None, start_worker=False)
    window.show()
    shell.start(None, demo=args.demo)
    try:
        project = (demo_project_dir() / "project.toml").resolve()
        qtbot.waitUntil(lambda: window.project_file == project and window.project_loaded, timeout=120_000)
        assert shell.welcome is None
    finally:
        close_app(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_run_that_ends_in_the_background_is_announced(qtbot, fresh_user):
    from studio.events import Failed, Finished

    window, shell = start_app(qtbot)
    try:
        if shell.welcome is not None:
            shell.welcome.reject()
        shell.notifier._tray = None  # the flashing-taskbar fallback: no tray icon on a test machine
        window.showMinimized()
        qtbot.waitUntil(window.isMinimized)
        with qtbot.waitSignal(shell.notifier.delivered) as signal:
            window.worker.message_received.emit(Finished(outputs=("/out/lora.safetensors",), step=40))
        assert signal.args[0].title == "Training finished" and "/out/lora.safetensors" in signal.args[0].message
        with qtbot.waitSignal(shell.notifier.delivered) as signal:
            window.worker.message_received.emit(Failed(error="CUDA out of memory"))
        assert signal.args[0].error and "out of memory" in signal.args[0].message
        with qtbot.assertNotEmitted(shell.notifier.delivered):  # a stop the user asked for is no news
            window.worker.message_received.emit(Finished(outputs=(), step=5, stopped=True))
    finally:
        close_app(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_open_recent_menu(qtbot, fresh_user, tmp_path):
    from studio.project import create_project

    project = create_project(tmp_path / "Fox", "sd15-style")
    window, shell = start_app(qtbot, project)
    close_app(window)  # it is now a recent project

    window, shell = start_app(qtbot)
    try:
        if shell.welcome is not None:
            shell.welcome.reject()
        shell.recent_menu.aboutToShow.emit()
        entries = [a for a in shell.recent_menu.actions() if a.isEnabled()]
        assert [a.toolTip() for a in entries] == [str(project)]
        entries[0].trigger()
        qtbot.waitUntil(lambda: window.project_file == project and window.project_loaded, timeout=10_000)
        assert window.train_panel.form.editor("output", "name").value() == "fox"
    finally:
        close_app(window)
