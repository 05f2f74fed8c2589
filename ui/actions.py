"""The menus and keyboard shortcuts desktop users expect, as actions the main window connects.

`create_actions(window)` makes every action once, with its shortcut, status tip and icon; `build_menus`
puts them in File / Edit / View / Help. The main window connects `triggered` to its own slots — the one
place signals are wired — so nothing here knows about projects or training.

Shortcuts: Ctrl+N new, Ctrl+O open, Ctrl+S save, Ctrl+Shift+S save as, Ctrl+Z undo, Ctrl+Shift+Z (and the
platform's own, e.g. Ctrl+Y on Windows) redo, F11 full screen, Ctrl+, preferences, Ctrl+Q quit — on macOS Qt
maps Ctrl to Cmd.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from PySide6.QtGui import QAction, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar, QStyle

from ui.app_icon import app_icon


@dataclass(frozen=True)
class AppActions:
    new_project: QAction
    open_project: QAction
    save: QAction
    save_as: QAction
    open_output_folder: QAction
    welcome: QAction
    settings: QAction
    quit: QAction
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
    action = QAction(text, window)
    action.setStatusTip(tip)
    action.setToolTip(tip)
    if keys:
        action.setShortcuts(_shortcuts(*keys))
    if icon is not None:
        action.setIcon(icon)
    window.addAction(action)  # shortcuts work in full screen too, where the menu bar may be hidden
    return action


def create_actions(window: QMainWindow, undo_group: QUndoGroup | None = None) -> AppActions:
    """All app-level actions. With `undo_group`, Undo/Redo follow the active panel's undo stack (their text
    says what will be undone, and they disable themselves when there is nothing to undo)."""
    std = window.style().standardIcon
    SP = QStyle.StandardPixmap
    if undo_group is not None:
        undo = undo_group.createUndoAction(window, "&Undo")
        redo = undo_group.createRedoAction(window, "&Redo")
        window.addAction(undo)
        window.addAction(redo)
    else:
        undo = _action(window, "&Undo", "Undo the last change")
        redo = _action(window, "&Redo", "Redo what was undone")
        undo.setEnabled(False)
        redo.setEnabled(False)
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
    quit_ = _action(window, "&Quit", "Close LoRA Studio", "Ctrl+Q", QKeySequence.StandardKey.Quit)
    quit_.setMenuRole(QAction.MenuRole.QuitRole)
    return AppActions(
        new_project=_action(window, "&New Project…", "Start a project in a new folder", "Ctrl+N",
                            icon=std(SP.SP_FileIcon)),
        open_project=_action(window, "&Open Project…", "Open a project.toml", "Ctrl+O",
                             icon=std(SP.SP_DialogOpenButton)),
        save=_action(window, "&Save", "Save the project", "Ctrl+S", icon=std(SP.SP_DialogSaveButton)),
        save_as=_action(window, "Save &As…", "Save the project under another name", "Ctrl+Shift+S"),
        open_output_folder=_action(window, "Open Output &Folder", "Show the exported LoRAs in the file manager",
                                   icon=std(SP.SP_DirOpenIcon)),
        welcome=_action(window, "&Welcome Screen", "Demo project, recent projects and what this computer can do"),
        settings=settings,
        quit=quit_,
        undo=undo,
        redo=redo,
        full_screen=full,
        about=about,
    )


def adopt_existing(window: QMainWindow, actions: AppActions) -> tuple[AppActions, set[str]]:
    """Where the window already has an action for one of our shortcuts (its own Open, Save, Quit…), use that
    one and drop ours: two actions with one shortcut make Qt fire neither ("ambiguous shortcut").

    Returns the actions with those fields replaced, and the names of the fields that were adopted.
    """
    ours = {id(getattr(actions, f.name)) for f in fields(actions)}
    theirs = [a for a in window.findChildren(QAction) if id(a) not in ours and a.shortcuts()]
    adopted: dict[str, QAction] = {}
    for f in fields(actions):
        mine = getattr(actions, f.name)
        keys = {k.toString() for k in mine.shortcuts()}
        match = next((a for a in theirs if keys & {k.toString() for k in a.shortcuts()}), None)
        if match is not None:
            window.removeAction(mine)
            mine.setShortcuts([])
            adopted[f.name] = match
    return replace(actions, **adopted), set(adopted)


def build_menus(menu_bar: QMenuBar, actions: AppActions) -> dict[str, QMenu]:
    """File / Edit / View / Help; returns the menus so panels can add their own entries."""
    file_menu = menu_bar.addMenu("&File")
    for a in (actions.new_project, actions.open_project, None, actions.save, actions.save_as, None,
              actions.open_output_folder, None, actions.welcome, actions.settings, None, actions.quit):
        file_menu.addSeparator() if a is None else file_menu.addAction(a)
    edit_menu = menu_bar.addMenu("&Edit")
    edit_menu.addAction(actions.undo)
    edit_menu.addAction(actions.redo)
    view_menu = menu_bar.addMenu("&View")
    view_menu.addAction(actions.full_screen)
    help_menu = menu_bar.addMenu("&Help")
    help_menu.addAction(actions.about)
    return {"file": file_menu, "edit": edit_menu, "view": view_menu, "help": help_menu}


def toggle_full_screen(window: QMainWindow, on: bool | None = None) -> bool:
    """Enter or leave full screen, returning to maximised or normal as before; returns the new state."""
    if on is None:
        on = not window.isFullScreen()
    if on:
        window.setProperty("wasMaximized", window.isMaximized())
        window.showFullScreen()
    elif window.property("wasMaximized"):
        window.showMaximized()
    else:
        window.showNormal()
    return on


def connect_full_screen(window: QMainWindow, action: QAction) -> None:
    """Wire the F11 action: it toggles full screen and stays checked while the window is full screen."""
    action.triggered.connect(lambda checked: toggle_full_screen(window, checked))


__all__ = ["AppActions", "create_actions", "adopt_existing", "build_menus", "toggle_full_screen", "connect_full_screen"]
