"""The mixer's preview image, with a status line, a progress bar and Cancel while its job runs.

A blank or flickering preview makes comparing two strengths impossible, so the previous image stays until
the new one arrives: `set_busy` / `show_job` only change the caption and the bar.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from ui.jobs.job import QUEUED, RUNNING, Job
from ui.layout import fill, flat, row
from ui.theme import set_role
from ui.widgets.build import button


class MixPreviewView(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "Add a LoRA to see a preview") -> None:
        super().__init__(parent)
        self.image = QLabel(placeholder, alignment=Qt.AlignmentFlag.AlignCenter, minimumSize=QSize(256, 256))
        self.image.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.caption = set_role(QLabel(wordWrap=True), "hint")
        self.bar = QProgressBar()
        self.cancel_button = button("Cancel", "Stop this render (or drop it from the queue)",
                                    self.cancel_requested)
        fill(flat(QVBoxLayout(self)), (self.image, 1), row((self.bar, 1), self.cancel_button), self.caption)
        self._pixmap: QPixmap | None = None
        self.path: str | None = None
        self.images_shown = 0
        self._show_bar(False)

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

    def show_job(self, job: Job, what: str = "preview") -> None:
        """The caption, bar and Cancel for `job`: queued ("queued: runs after the training job"), running
        (steps or cells with an ETA; a busy bar until the first count), or ended (bar and Cancel hidden)."""
        active = job.state in (QUEUED, RUNNING)
        self._show_bar(active)
        if job.state == QUEUED:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.bar.setFormat("queued")
            self.caption.setText(job.detail or "queued")
        elif job.state == RUNNING:
            pr = job.progress
            if pr.total:
                self.bar.setRange(0, pr.total)
                self.bar.setValue(min(pr.done, pr.total))
                self.bar.setFormat(pr.text())
            else:
                self.bar.setRange(0, 0)  # busy until the worker counts steps
            self.caption.setText(f"rendering the {what}…" + (f" ({job.detail})" if job.detail else ""))
        if active and self._pixmap is None:  # never "Add a LoRA…" while one is on its way
            self.image.setText(f"The {what} is queued" if job.state == QUEUED else f"Rendering the {what}…")

    def _show_bar(self, visible: bool) -> None:
        self.bar.setVisible(visible)
        self.cancel_button.setVisible(visible)

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
