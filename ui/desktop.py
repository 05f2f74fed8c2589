"""What makes the main window a desktop app: welcome, app settings and theme, recent projects, the
Edit/View additions, About and Settings, notifications. `DesktopShell` uses only the window's public
surface, so the window's own wiring stays in one place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox

from studio.config import resolve_path
from studio.events import Failed, Finished
from ui.actions import create_actions, toggle_full_screen
from ui.app_icon import app_icon
from ui.dialogs.welcome import WelcomeDialog, prepare_demo_project
from ui.gc_guard import install_gc_guard
from ui.main_window import MainWindow
from ui.notifications import Notifier
from ui.open_folder import open_folder_or_explain
from ui.settings import AppSettings, load_settings, save_settings
from ui.theme import apply_theme

log = logging.getLogger(__name__)


def prepare_application(settings: AppSettings) -> str:
    """Theme, icon and desktop-file name on the QApplication; returns the theme in use. Call it before
    building the main window too: widgets that paint themselves (charts) read the palette when created."""
    app = QApplication.instance()
    install_gc_guard(app)
    theme = apply_theme(app, settings.theme)
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("lora-studio")  # matches packaging/lora-studio.desktop (Wayland app id, taskbar icon)
    return theme


class DesktopShell(QObject):
    settings_changed = Signal(object)  # AppSettings, after they were saved

    def __init__(self, window: MainWindow, settings: AppSettings | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings if settings is not None else load_settings()
        self.welcome: WelcomeDialog | None = None
        self.undo_group = QUndoGroup(self)  # Edit ▸ Undo follows the active panel's stack: the Dataset area's
        self.undo_group.addStack(window.dataset_panel.undo_stack)
        self.undo_group.setActiveStack(window.dataset_panel.undo_stack)
        self.notifier = Notifier(window)
        self._recorded: Path | None = None
        self.theme = prepare_application(self.settings)
        window.setWindowIcon(app_icon())
        self.actions = create_actions(window, self.undo_group)
        self._extend_menus()
        self._wire()

    # ---------------------------------------------------------------------------------------------
    def _extend_menus(self) -> None:
        a, w, bar = self.actions, self.window, self.window.menuBar()
        file_menu = w.file_menu
        file_menu.insertAction(file_menu.actions()[0], a.new_project)
        for action in (a.open_output_folder, None, a.welcome, a.settings, None):
            if action is None:
                file_menu.insertSeparator(w.quit_action)
            else:
                file_menu.insertAction(w.quit_action, action)
        self.recent_menu = QMenu("Open &Recent", file_menu, aboutToShow=self._fill_recent_menu)
        entries = file_menu.actions()
        file_menu.insertMenu(entries[entries.index(w.open_action) + 1], self.recent_menu)
        edit_menu = QMenu("&Edit", bar)
        edit_menu.addActions([a.undo, a.redo])
        bar.insertMenu(bar.actions()[1], edit_menu)
        w.view_menu.addAction(a.full_screen)
        w.help_menu.addAction(a.about)

    def _wire(self) -> None:
        a = self.actions
        for action, slot in ((a.new_project, self.new_project), (a.welcome, self.show_welcome),
                             (a.settings, self.show_settings), (a.about, self.show_about),
                             (a.open_output_folder, self.open_output_folder)):
            action.triggered.connect(slot)
        a.full_screen.triggered.connect(lambda checked: toggle_full_screen(self.window, checked))
        # MainWindow retitles itself whenever its project file changes (open, save as): record it then
        self.window.windowTitleChanged.connect(lambda _title: self._record_project())
        self.window.worker.message_received.connect(self._on_message)
        panel = self.window.train_panel  # its base-model picker lists the settings' model folders
        panel.set_model_folders(self.settings.model_folders)
        panel.model_folders_changed.connect(self._model_folders_added)
        self.settings_changed.connect(lambda settings: panel.set_model_folders(settings.model_folders))

    # ---------------------------------------------------------------------------------------------
    # start-up
    def start(self, project: Path | None = None, *, demo: bool = False) -> None:
        """After `window.show()`: the demo, or last time's project; the welcome screen only on a first start
        or when that project is no longer there (saying so)."""
        self._record_project()
        if demo:
            self.open_demo()
            return
        if project is not None:
            return
        last = self.settings.last_project
        if last and Path(last).is_file():
            self.open_project(Path(last))
        elif last:
            note = f"The project you had open last time, {last}, is no longer there (moved, renamed or deleted)."
            if self.settings.show_welcome:
                QTimer.singleShot(0, lambda: self.show_welcome().tell(note))
            else:
                self.window.statusBar().showMessage(note, 15000)
        elif self.settings.show_welcome:
            QTimer.singleShot(0, self.show_welcome)

    def show_welcome(self) -> WelcomeDialog:
        if self.welcome is not None and self.welcome.isVisible():
            self.welcome.raise_()
            return self.welcome
        dialog = WelcomeDialog(self.settings, self.window, jobs=self.window.jobs)
        dialog.chosen.connect(lambda choice: self.open_project(choice.project_file))
        dialog.finished.connect(lambda _result: self._welcome_closed(dialog))
        self.welcome = dialog
        dialog.open()  # window-modal, not blocking: the main window is already there behind it
        return dialog

    def open_project(self, path: Path) -> bool:
        """Open `path` in the window — not while a run is going (its settings and charts belong to it)."""
        if self.window.train_panel.run_active:
            QMessageBox.information(self.window, "LoRA Studio", "Stop the run before opening another project.")
            return False
        self.window.open_project(Path(path))
        return True

    def _welcome_closed(self, dialog: WelcomeDialog) -> None:
        after = dialog.settings_after()
        if dialog.choice is None:  # the dialog's copy predates projects opened while it was up
            after = replace(after, last_project=self.settings.last_project)
        self.update_settings(after)

    def open_demo(self) -> None:
        """Build (first time) and open the demo project — `lora-studio gui --demo` and the welcome's button."""
        self.window.statusBar().showMessage("Preparing the demo project…")
        self._demo_job = prepare_demo_project(
            self.window.jobs, on_done=self._demo_ready,
            on_error=lambda error, hint: QMessageBox.warning(
                self.window, "LoRA Studio", f"Could not prepare the demo project: {error}" + (f"\n{hint}" if hint else "")))

    def _demo_ready(self, project: Path) -> None:
        self.window.statusBar().clearMessage()
        self.open_project(project)

    # ---------------------------------------------------------------------------------------------
    # settings and recent projects
    def update_settings(self, settings: AppSettings) -> None:
        """Keep, save and apply (theme) new settings. A failed save is logged: settings are not worth a dialog."""
        theme_changed = settings.theme != self.settings.theme
        self.settings = settings
        try:
            save_settings(settings)
        except Exception as exc:  # noqa: BLE001 - a read-only config folder must not break the app
            log.warning("could not save settings: %s", exc)
        if theme_changed:
            self.theme = apply_theme(QApplication.instance(), settings.theme)
        self.settings_changed.emit(settings)

    def _model_folders_added(self, folders: tuple[str, ...]) -> None:
        """"Add model folder…" in the Train panel's model picker: saved like a change in File ▸ Preferences."""
        self.update_settings(replace(self.settings, model_folders=tuple(folders)))

    def _record_project(self) -> None:
        path = self.window.project_file
        if path is None or path == self._recorded:
            return
        self._recorded = Path(path)
        self.update_settings(replace(self.settings.with_recent(path), last_folder=str(Path(path).parent),
                                     last_project=str(Path(path).expanduser().resolve())))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.existing_recent()
        for path in recent:
            action = self.recent_menu.addAction(f"{path.parent.name} — {path.parent}",
                                                lambda _checked=False, p=path: self.open_project(p))
            action.setToolTip(str(path))
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    # ---------------------------------------------------------------------------------------------
    # dialogs and helpers
    def show_settings(self) -> None:
        from ui.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.window)
        if dialog.exec():
            self.update_settings(dialog.edited())

    def show_about(self) -> None:
        from ui.dialogs.about import AboutDialog

        AboutDialog(self.window).exec()

    def new_project(self) -> None:
        """File ▸ New: the welcome screen's "New project" (it knows the recommended preset)."""
        dialog = self.show_welcome()
        QTimer.singleShot(0, dialog.new_project)

    def output_folder(self) -> Path:
        project = self.window.project_file
        if project is not None:
            try:
                return resolve_path(project, self.window.train_panel.current_config().output.directory)
            except Exception:  # noqa: BLE001 - a half-typed form: fall back to the saved setting
                pass
        return self.settings.effective_output_folder()

    def open_output_folder(self) -> bool:
        return open_folder_or_explain(self.output_folder(), self.window)

    def _on_message(self, message: object) -> None:
        """A run ended: tell the user if they are looking at another window."""
        name = self._run_name()
        if isinstance(message, Finished) and not message.stopped:
            self.notifier.run_finished(name, message.outputs[-1] if message.outputs else None)
        elif isinstance(message, Failed):
            self.notifier.run_failed(name, message.error)

    def _run_name(self) -> str:
        try:
            return self.window.train_panel.current_config().output.name
        except Exception:  # noqa: BLE001
            return "Your LoRA"
