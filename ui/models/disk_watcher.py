"""Notices when another program changes a dataset's files, and says which folders to read again.

A folder watch fires when files are added, removed or replaced (most editors save by replacing); a
file watch on the caption being edited catches editors that write in place. Bursts are collected for a
moment and reported once, as folders. Returning to the app counts as a change of every watched folder:
captions edited in place in another program (which no folder watch reports) and file systems that
report nothing (network shares) are caught when the user comes back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication

DELAY_MS = 600


class DiskWatcher(QObject):
    folders_changed = Signal(list)  # list[Path]

    def __init__(self, parent: QObject | None = None, delay_ms: int = DELAY_MS) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self, directoryChanged=lambda folder: self.touch(Path(folder)),
                                           fileChanged=self._file_changed)
        self._file = ""
        self._pending: set[Path] = set()
        self._timer = QTimer(self, singleShot=True, interval=delay_ms, timeout=self._report)
        app = QApplication.instance()
        if app is not None:
            app.applicationStateChanged.connect(self._app_state_changed)

    def watch_folders(self, folders: Iterable[Path]) -> None:
        paths = [str(f) for f in folders if f.is_dir()]
        if paths:
            self._watcher.addPaths(paths)

    def unwatch_under(self, root: Path) -> None:
        """Stop watching `root` and the folders inside it (the user removed it from the dataset)."""
        gone = [d for d in self._watcher.directories() if Path(d).is_relative_to(root)]
        if gone:
            self._watcher.removePaths(gone)

    def watch_file(self, path: Path | None) -> None:
        """Watch one file (the caption being edited) instead of the previous one."""
        if self._file:
            self._watcher.removePath(self._file)
            self._file = ""
        if path is not None and path.exists() and self._watcher.addPath(str(path)):
            self._file = str(path)

    def clear(self) -> None:
        paths = self._watcher.directories() + self._watcher.files()
        if paths:
            self._watcher.removePaths(paths)
        self._file = ""
        self._pending.clear()

    def touch(self, folder: Path) -> None:
        self._pending.add(folder)
        self._timer.start()

    def _file_changed(self, path: str) -> None:
        self.touch(Path(path).parent)
        if path == self._file and os.path.exists(path):
            self._watcher.addPath(path)  # an editor that replaced the file ended the watch

    def _app_state_changed(self, state) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            for folder in self._watcher.directories():
                self.touch(Path(folder))

    def _report(self) -> None:
        folders, self._pending = sorted(self._pending), set()
        if folders:
            self.folders_changed.emit(folders)
