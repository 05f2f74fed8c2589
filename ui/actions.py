"""The app-level actions desktop users expect, with their shortcuts (on macOS Qt maps Ctrl to Cmd); the
desktop shell puts them in menus. Open, Save, Save As and Quit are the main window's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QMainWindow, QStyle

from ui.app_icon import app_icon


@dataclass(frozen=True)
class AppActions:
    new_project: QAction
    open_output_folder: QAction
    welcome: QAction
    settings: QAction
    undo: QAction
    redo: QAction
    full_screen: QAction
    about: QAction


def _shortcuts(*keys: QKeySequence | QKeySequence.StandardKey | str) -> list[QKeySequence]:
    """Our shortcut first, then the platform's standard ones, without duplicates or empty sequences."""
    out: list[QKeySequence] = []
    for key in keys:
        seqs = QKeySequence.keyBindings(key) if isinstance(key, QKeySequence.StandardKey) else [QKeySequence(key)]
        for seq in seqs:
            if not seq.isEmpty() and seq not in out:
                out.append(seq)
    return out


def _action(window: QMainWindow, text: str, tip: str, *keys, icon=None) -> QAction:
    action = QAction(text, window, statusTip=tip, toolTip=tip)
    if keys:
        action.setShortcuts(_shortcuts(*keys))
    if icon is not None:
        action.setIcon(icon)
    window.addAction(action)  # shortcuts work in full screen too, where the menu bar may be hidden
    return action


def create_actions(window: QMainWindow, undo_group: QUndoGroup) -> AppActions:
    """All app-level actions. Undo/Redo follow the active panel's undo stack in `undo_group` (their text
    says what will be undone, and they disable themselves when there is nothing to undo)."""
    std = window.style().standardIcon
    SP = QStyle.StandardPixmap
    undo = undo_group.createUndoAction(window, "&Undo")
    redo = undo_group.createRedoAction(window, "&Redo")
    window.addActions([undo, redo])
    undo.setShortcuts(_shortcuts("Ctrl+Z", QKeySequence.StandardKey.Undo))
    redo.setShortcuts(_shortcuts("Ctrl+Shift+Z", QKeySequence.StandardKey.Redo))
    full = _action(window, "&Full Screen", "Use the whole screen (F11 again to leave)", "F11",
                   QKeySequence.StandardKey.FullScreen)
    full.setCheckable(True)
    about = _action(window, "&About LoRA Studio", "Versions of LoRA Studio and its libraries", icon=app_icon())
    about.setMenuRole(QAction.MenuRole.AboutRole)
    settings = _action(window, "&Preferences…", "Theme, folders and preview defaults", "Ctrl+,",
                       QKeySequence.StandardKey.Preferences)
    settings.setMenuRole(QAction.MenuRole.PreferencesRole)
    return AppActions(
        new_project=_action(window, "&New Project…", "Start a project in a new folder", "Ctrl+N",
                            icon=std(SP.SP_FileIcon)),
        open_output_folder=_action(window, "Open Output &Folder", "Show the exported LoRAs in the file manager",
                                   icon=std(SP.SP_DirOpenIcon)),
        welcome=_action(window, "&Welcome Screen", "Demo project, recent projects and what this computer can do"),
        settings=settings, undo=undo, redo=redo, full_screen=full, about=about)


def toggle_full_screen(window: QMainWindow, on: bool) -> None:
    if on:
        window.setProperty("wasMaximized", window.isMaximized())
        window.showFullScreen()
    elif window.property("wasMaximized"):
        window.showMaximized()
    else:
        window.showNormal()
