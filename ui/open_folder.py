"""Showing a folder in the system's file manager: after an export, the next thing an artist does is find
the file. Where the desktop has no program for folders, a window says so and shows the path (issue 18).
"""

from __future__ import annotations

from pathlib import Path

import sys

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget


def nearest_existing(path: str | Path) -> Path:
    """`path` if it exists, else its closest existing parent (a run that failed early may lack its folder)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def folder_url(path: str | Path) -> QUrl:
    p = nearest_existing(path)
    if p.is_file():
        p = p.parent
    return QUrl.fromLocalFile(str(p))


def open_folder(path: str | Path) -> bool:
    return QDesktopServices.openUrl(folder_url(path))


def why_not_opened(platform: str = sys.platform) -> str:
    if platform.startswith("linux"):
        return ("No program is registered to open folders on this desktop (xdg-open found none). Install a file "
                "manager (Files, Dolphin, Thunar…) or the xdg-utils package, or open the path below yourself.")
    return "The system did not open a file manager for it. Open the path below yourself."


def explain_open_failure(path: str | Path, parent: QWidget | None) -> QMessageBox:
    """A window-modal, non-blocking message with the reason and the folder's path, selectable to copy."""
    folder = folder_url(path).toLocalFile()
    box = QMessageBox(QMessageBox.Icon.Information, "Could not open the folder",
                      f"LoRA Studio could not show this folder in a file manager:\n\n{folder}",
                      QMessageBox.StandardButton.Ok, parent, informativeText=why_not_opened(),
                      textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse,
                      objectName="openFolderFailed")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def open_folder_or_explain(path: str | Path, parent: QWidget | None) -> bool:
    if open_folder(path):
        return True
    explain_open_failure(path, parent)
    return False
