"""Help ▸ Documentation: the guide that ships beside the code (`studio.resources.app_root`), opened in the
system's viewer. A pip wheel has none: then a message names the files, instead of a click that does nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from studio.resources import app_root

GUIDES = ("README.md", "docs/TRAINING.md")


def documentation_file(root: Path | None = None) -> Path | None:
    base = root or app_root()
    for name in GUIDES:
        path = base / name
        if path.is_file():
            return path
    return None


def open_documentation(parent: QWidget | None, root: Path | None = None) -> bool:
    """Open the guide; returns False (after saying why in a message over `parent`) when it cannot."""
    path = documentation_file(root)
    if path is not None and QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    if path is None:
        text = ("This installation has no documentation files. The user guide is README.md and docs/TRAINING.md "
                "in LoRA Studio's source repository.")
    else:
        text = f"Nothing on this computer could open the user guide. It is the text file\n\n{path}"
    box = QMessageBox(QMessageBox.Icon.Information, "Documentation", text, QMessageBox.StandardButton.Ok,
                      parent, objectName="documentationMissing")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return False
