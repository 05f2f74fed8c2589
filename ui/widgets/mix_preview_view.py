"""The mixer's preview image: the previous image stays until the new one arrives, with a status line.

A blank or flickering preview while the next one renders makes comparing two strengths impossible, so
`set_busy` only changes the caption; `show_image` swaps the picture in one step.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


class MixPreviewView(QWidget):
    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "Add a LoRA to see a preview") -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.image = QLabel(placeholder)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(256, 256)
        self.image.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.caption = QLabel()
        self.caption.setProperty("role", "hint")
        self.caption.setWordWrap(True)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        self._pixmap: QPixmap | None = None
        self.path: str | None = None
        self.images_shown = 0

    def show_image(self, path: str, caption: str = "") -> bool:
        pixmap = QPixmap(str(Path(path)))
        if pixmap.isNull():
            self.caption.setText(f"Could not read the preview image {path}")
            return False
        self._pixmap, self.path = pixmap, path
        self.images_shown += 1
        self._rescale()
        self.caption.setText(caption)
        return True

    def set_busy(self, text: str) -> None:
        self.caption.setText(text)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        size = self.image.size()
        scale = max(1, min(size.width() // self._pixmap.width(), size.height() // self._pixmap.height()))
        if self._pixmap.width() * scale <= size.width() and self._pixmap.height() * scale <= size.height():
            # small previews (tiny models, 64 px) are enlarged by whole factors so pixels stay crisp
            shown = self._pixmap.scaled(self._pixmap.size() * scale, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation)
        else:
            shown = self._pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(shown)
