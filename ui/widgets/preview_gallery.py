"""Preview images as they arrive, one row per training step (newest on top), click to enlarge.

Thumbnails are decoded on the thread pool, so a stream of previews never stalls the window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from ui.background import run_in_background
from ui.layout import fill, flat, row
from ui.widgets.build import button
from ui.widgets.image_viewer import CompareDialog, ImageDialog, load_image

THUMB = 160


class Thumbnail(QLabel):
    clicked = Signal()

    def __init__(self, step: int, prompt: str, path: str) -> None:
        super().__init__("…", alignment=Qt.AlignmentFlag.AlignCenter, frameShape=QFrame.Shape.StyledPanel,
                         cursor=Qt.CursorShape.PointingHandCursor,
                         toolTip=f"step {step}\n{prompt}\n(click to enlarge)")
        self.step, self.prompt, self.path = step, prompt, path
        self.loaded = False
        self.setFixedSize(THUMB + 6, THUMB + 6)
        run_in_background(load_image, path, THUMB, on_done=self._show, on_error=self._fail)

    def _show(self, image: QImage) -> None:
        self.setPixmap(QPixmap.fromImage(image))
        self.loaded = True

    def _fail(self, exc: BaseException) -> None:
        self.setText("unreadable")
        self.setToolTip(str(exc))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


class PreviewGallery(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: dict[int, tuple[QFrame, QHBoxLayout]] = {}  # step: its frame and its row of thumbnails
        self._samples: dict[int, list[tuple[str, str]]] = {}
        self.thumbnails: list[Thumbnail] = []
        self._summary = QLabel("Previews appear here as the run makes them.")
        self.compare_button = button("Compare steps…", "Show two steps' previews side by side",
                                     self.open_compare, enabled=False)
        self._host = QWidget()
        self._column = fill(QVBoxLayout(self._host), None)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self._host)
        fill(flat(QVBoxLayout(self)), row((self._summary, 1), self.compare_button), (scroll, 1))

    def count(self) -> int:
        return len(self.thumbnails)

    def steps(self) -> list[int]:
        return sorted(self._samples)

    def add(self, step: int, prompt: str, path: str) -> Thumbnail:
        row = self._rows[step][1] if step in self._rows else self._new_row(step)
        thumb = Thumbnail(step, prompt, path)
        thumb.clicked.connect(lambda t=thumb: self.open_image(t))
        row.insertWidget(row.count() - 1, thumb)
        self.thumbnails.append(thumb)
        self._samples.setdefault(step, []).append((prompt, path))
        n = len(self._samples)
        self._summary.setText(f"{len(self.thumbnails)} previews from {n} step{'s' if n != 1 else ''}")
        self.compare_button.setEnabled(n >= 2)
        return thumb

    def _new_row(self, step: int) -> QHBoxLayout:
        box = QFrame(objectName=f"step-{step}")
        thumbs = row(None)
        fill(QVBoxLayout(box), QLabel(f"<b>Step {step}</b>"), thumbs).setContentsMargins(4, 4, 4, 4)
        # newest step on top; rows stay sorted when a resumed run or history fills in older steps
        position = sum(1 for s in self._rows if s > step)
        self._column.insertWidget(position, box)
        self._rows[step] = box, thumbs
        return thumbs

    def truncate(self, last_step: int) -> None:
        """Drop previews after `last_step` (a run resumed from that checkpoint makes them again)."""
        for step in [s for s in self._rows if s > last_step]:
            self._rows.pop(step)[0].deleteLater()
            del self._samples[step]
        self.thumbnails = [t for t in self.thumbnails if t.step <= last_step]
        self.compare_button.setEnabled(len(self._samples) >= 2)

    def clear(self) -> None:
        self.truncate(-(2**62))
        self._summary.setText("Previews appear here as the run makes them.")

    def open_image(self, thumb: Thumbnail) -> ImageDialog:
        return _shown(ImageDialog(thumb.path, f"Step {thumb.step} — {thumb.prompt}", self))

    def open_compare(self) -> CompareDialog:
        return _shown(CompareDialog({s: list(v) for s, v in self._samples.items()}, self))


def _shown(dialog: QDialog) -> QDialog:
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
