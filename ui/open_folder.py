"""Showing a folder in the system's file manager (Explorer, Finder, Files).

After an export the next thing an artist does is find the file; every place that writes files offers this.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def nearest_existing(path: str | Path) -> Path:
    """`path` if it exists, else its closest existing parent (a run that failed early may lack its folder)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def folder_url(path: str | Path) -> QUrl:
    """A file:// URL for the folder to show; for a file, the folder it is in."""
    p = nearest_existing(path)
    if p.is_file():
        p = p.parent
    return QUrl.fromLocalFile(str(p))


def open_folder(path: str | Path) -> bool:
    """Open the folder (or a file's folder) in the file manager; False when the desktop could not."""
    return QDesktopServices.openUrl(folder_url(path))
