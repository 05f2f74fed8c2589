"""An "Open output folder" button for every place that writes files.

It asks for the folder when clicked: the output folder can change while the window is open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QPushButton, QWidget

from ui.open_folder import explain_open_failure, folder_url, open_folder

FolderSource = Callable[[], "str | Path | None"]


class OpenFolderButton(QPushButton):
    def __init__(self, folder: FolderSource, text: str = "Open output folder", parent: QWidget | None = None,
                 opener: Callable[[Path], bool] = open_folder) -> None:
        super().__init__(text, parent)
        self._folder = folder
        self._opener = opener  # replaceable so tests do not launch a file manager
        self.clicked.connect(self.open)
        self.refresh()

    def refresh(self) -> None:
        path = self._folder()
        self.setEnabled(path is not None)
        self.setToolTip(folder_url(path).toLocalFile() if path is not None else "Nothing has been written yet")

    def open(self) -> bool:
        path = self._folder()
        if path is None:
            return False
        if self._opener(Path(path)):
            return True
        explain_open_failure(path, self.window())  # never a silent click
        return False
