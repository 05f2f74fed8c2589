"""What makes the main window a desktop app: first-run welcome, app settings and theme, recent projects,
the Edit/View menus and their shortcuts, the About and Settings dialogs, notifications, open-output-folder.

`DesktopShell` attaches to a `MainWindow` through its public surface only (menu bar, `open_project`,
`project_file`, `train_panel`, the worker's messages), so the window's own wiring stays in one place and
this layer can be tested on its own. `ui.app.main` creates it right after the window:

    shell = DesktopShell(window)
    shell.start(project, demo=args.demo)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QUndoGroup
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QMessageBox

from studio.config import resolve_path
from studio.events import Failed, Finished
from ui.actions import adopt_existing, create_actions, toggle_full_screen
from ui.app_icon import app_icon
from ui.dialogs.welcome import WelcomeChoice, WelcomeDialog, prepare_demo_project
from ui.gc_guard import install_gc_guard
from ui.notifications import Notifier
from ui.open_folder import open_folder_or_explain
from ui.settings import AppSettings, load_settings, save_settings
from ui.theme import apply_theme

log = logging.getLogger(__name__)


# File actions MainWindow has itself (with its own slots); ours for these are only used to find them
WINDOW_OWNS = ("open_project", "save", "save_as", "quit")


def _menu(window: QMainWindow, title: str) -> QMenu | None:
    """The window's top-level menu whose title (without the & mnemonic) is `title`."""
    for action in window.menuBar().actions():
        menu = action.menu()
        if menu is not None and action.text().replace("&", "") == title:
            return menu
    return None


def prepare_application(settings: AppSettings) -> str:
    """Theme, icon and desktop-file name on the QApplication; returns the theme in use.

    Call it before building the main window as well: widgets that paint themselves (charts) read the
    palette when they are created.
    """
    app = QApplication.instance()
    install_gc_guard(app)
    theme = apply_theme(app, settings.theme)
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("lora-studio")  # matches packaging/lora-studio.desktop (Wayland app id, taskbar icon)
    return theme


class DesktopShell(QObject):
    welcome_shown = Signal(object)  # WelcomeDialog
    settings_changed = Signal(object)  # AppSettings, after they were saved

    def __init__(self, window: QMainWindow, settings: AppSettings | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings if settings is not None else load_settings()
        self.welcome: WelcomeDialog | None = None
        self.undo_group = QUndoGroup(self)  # panels add their QUndoStacks; Edit ▸ Undo follows the active one
        for stack in getattr(window, "undo_stacks", list)():  # MainWindow's panels (the Dataset area)
            self.undo_group.addStack(stack)
            self.undo_group.setActiveStack(stack)
        self.notifier = Notifier(window)
        self._recorded: Path | None = None
        self.theme = prepare_application(self.settings)
        window.setWindowIcon(app_icon())
        self.actions, self.adopted = adopt_existing(window, create_actions(window, self.undo_group))
        self._extend_menus()
        self._wire()

    # ---------------------------------------------------------------------------------------------
    def _extend_menus(self) -> None:
        """Add ours to the window's File and Help menus, and Edit and View menus after File.

        The window's own File entries (open, save, quit) stay; ours go around them: New first, Open Recent
        after Open, output folder, welcome and settings before Quit.
        """
        a, bar = self.actions, self.window.menuBar()
        file_menu = _menu(self.window, "File") or bar.addMenu("&File")
        entries = file_menu.actions()
        file_menu.insertAction(entries[0] if entries else None, a.new_project)
        for name in WINDOW_OWNS:  # the window's own are in use; ours (if no shortcut matched) stay unused
            if name not in self.adopted:
                self.window.removeAction(getattr(a, name))
                getattr(a, name).setShortcuts([])
        entries = file_menu.actions()
        quit_action = a.quit if a.quit in entries else None
        for action in (a.open_output_folder, None, a.welcome, a.settings, None):
            if action is None:
                file_menu.insertSeparator(quit_action)
            else:
                file_menu.insertAction(quit_action, action)
        self.recent_menu = QMenu("Open &Recent", file_menu)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        entries = file_menu.actions()
        after_open = entries[entries.index(a.open_project) + 1] if a.open_project in entries else a.open_output_folder
        file_menu.insertMenu(after_open, self.recent_menu)

        tops = bar.actions()
        after_file = tops[1] if len(tops) > 1 else None
        self.edit_menu = QMenu("&Edit", bar)
        self.edit_menu.addAction(a.undo)
        self.edit_menu.addAction(a.redo)
        bar.insertMenu(after_file, self.edit_menu)
        view = _menu(self.window, "View")  # the window's own (its panels, Ctrl+1/2/3) gets Full Screen too
        if view is None:
            self.view_menu = QMenu("&View", bar)
            bar.insertMenu(after_file, self.view_menu)
        else:
            self.view_menu = view
        self.view_menu.addAction(a.full_screen)

        help_menu = _menu(self.window, "Help") or bar.addMenu("&Help")
        for action in help_menu.actions():  # one About box: ours, with every version
            if "about" in action.text().lower():
                action.setVisible(False)
        help_menu.addAction(a.about)

    def _wire(self) -> None:
        a = self.actions
        a.new_project.triggered.connect(self.new_project)
        a.welcome.triggered.connect(self.show_welcome)
        a.settings.triggered.connect(self.show_settings)
        a.about.triggered.connect(self.show_about)
        a.open_output_folder.triggered.connect(self.open_output_folder)
        a.full_screen.triggered.connect(lambda checked: toggle_full_screen(self.window, checked))
        # MainWindow retitles itself whenever its project file changes (open, save as): record it then
        self.window.windowTitleChanged.connect(lambda _title: self._record_project())
        worker = getattr(self.window, "worker", None)
        if worker is not None:
            worker.message_received.connect(self._on_message)
        panel = getattr(self.window, "train_panel", None)
        if panel is not None and hasattr(panel, "set_model_folders"):  # the base-model picker lists these
            panel.set_model_folders(self.settings.model_folders)
            panel.model_folders_changed.connect(self._model_folders_added)
            self.settings_changed.connect(self._push_model_folders)

    # ---------------------------------------------------------------------------------------------
    # start-up
    def start(self, project: Path | None = None, *, demo: bool = False) -> None:
        """After `window.show()`: open the demo, or the project the user had open last time (with its last
        run's chart and previews). The welcome screen comes up only on a first start, or when that project
        is no longer there (saying so)."""
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
        dialog.chosen.connect(self._welcome_chosen)
        dialog.finished.connect(lambda _result: self._welcome_closed(dialog))
        self.welcome = dialog
        dialog.open()  # window-modal, not blocking: the main window is already there behind it
        self.welcome_shown.emit(dialog)
        return dialog

    def _welcome_chosen(self, choice: WelcomeChoice) -> None:
        self.open_project(choice.project_file)

    def open_project(self, path: Path) -> bool:
        """Open `path` in the window — not while a run is going (its settings and charts belong to it)."""
        panel = getattr(self.window, "train_panel", None)
        if panel is not None and panel.run_active:
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

    def _push_model_folders(self, settings: AppSettings) -> None:
        panel = getattr(self.window, "train_panel", None)
        if panel is not None:
            panel.set_model_folders(settings.model_folders)

    def _record_project(self) -> None:
        path = getattr(self.window, "project_file", None)
        if path is None or path == self._recorded:
            return
        self._recorded = Path(path)
        self.update_settings(replace(self.settings.with_recent(path), last_folder=str(Path(path).parent),
                                     last_project=str(Path(path).expanduser().resolve())))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.existing_recent()
        for path in recent:
            action = QAction(f"{path.parent.name} — {path.parent}", self.recent_menu)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_project(p))
            self.recent_menu.addAction(action)
        if not recent:
            empty = self.recent_menu.addAction("No recent projects")
            empty.setEnabled(False)

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
        """Where the current project exports, else the default output folder from the settings."""
        project = getattr(self.window, "project_file", None)
        panel = getattr(self.window, "train_panel", None)
        if project is not None and panel is not None:
            try:
                return resolve_path(project, panel.current_config().output.directory)
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
        panel = getattr(self.window, "train_panel", None)
        try:
            return panel.current_config().output.name if panel is not None else "Your LoRA"
        except Exception:  # noqa: BLE001
            return "Your LoRA"
