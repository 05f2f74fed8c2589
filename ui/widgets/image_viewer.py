"""Looking at previews: one image enlarged, or two training steps side by side.

Images are decoded on the thread pool (`load_image`), so opening a 1024-px preview never stalls the window.
"""

from __future__ import annotations

from itertools import zip_longest

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QDialog, QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from ui.background import run_in_background
from ui.layout import fill, row


def load_image(path: str, max_side: int, *, upscale: bool = True) -> QImage:
    """Decode an image file to fit `max_side` (small previews enlarged, pixel-sharp), on a pool thread:
    QImage, unlike QPixmap, may cross threads, and Pillow decodes with the GIL released where Qt's reader
    would hold it and stall the GUI thread while previews stream in."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.draft("RGB", (max_side, max_side))
            img = img.convert("RGBA")
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            if upscale and max(img.size) * 2 <= max_side:
                factor = max_side // max(img.size)
                img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
            data = img.tobytes()
            width, height = img.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise OSError(f"cannot read {path}: {exc}") from None
    return QImage(data, width, height, width * 4, QImage.Format.Format_RGBA8888).copy()


class AsyncImageLabel(QLabel):
    def __init__(self, max_side: int, parent: QWidget | None = None) -> None:
        super().__init__(parent, alignment=Qt.AlignmentFlag.AlignCenter, minimumSize=QSize(64, 64))
        self._max_side = max_side
        self._path = ""

    def set_path(self, path: str) -> None:
        self._path = path
        if not path:
            self.clear()
            self.setText("—")
            return
        self.setText("loading…")
        run_in_background(load_image, path, self._max_side, on_done=lambda img, p=path: self._show(p, img),
                          on_error=lambda exc, p=path: self._fail(p, exc))

    def _show(self, path: str, image: QImage) -> None:
        if path == self._path:
            self.setPixmap(QPixmap.fromImage(image))

    def _fail(self, path: str, exc: BaseException) -> None:
        if path == self._path:
            self.setText(str(exc))


class ImageDialog(QDialog):
    def __init__(self, path: str, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, windowTitle=caption)
        self.image = AsyncImageLabel(1024)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.image)
        fill(QVBoxLayout(self), scroll).addWidget(
            QLabel(caption, wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse))
        self.image.set_path(path)
        self.resize(720, 760)


class CompareDialog(QDialog):
    """Two steps side by side, one row per preview prompt: is the LoRA still improving or overcooking?"""

    def __init__(self, samples: dict[int, list[tuple[str, str]]], parent: QWidget | None = None) -> None:
        super().__init__(parent, windowTitle="Compare previews")
        self._samples = samples
        steps = sorted(samples)
        self.left, self.right = QComboBox(), QComboBox()
        for combo in (self.left, self.right):
            for s in steps:
                combo.addItem(f"step {s}", s)
        if len(steps) >= 2:
            self.left.setCurrentIndex(len(steps) - 2)
        self.right.setCurrentIndex(len(steps) - 1)
        grid_host = QWidget()
        self._grid = QGridLayout(grid_host)
        rows = max((len(v) for v in samples.values()), default=0)
        self._cells: list[tuple[QLabel, AsyncImageLabel, AsyncImageLabel]] = []
        for i in range(rows):
            prompt = QLabel(wordWrap=True)
            a, b = AsyncImageLabel(512), AsyncImageLabel(512)
            self._grid.addWidget(prompt, i * 2, 0, 1, 2)
            self._grid.addWidget(a, i * 2 + 1, 0)
            self._grid.addWidget(b, i * 2 + 1, 1)
            self._cells.append((prompt, a, b))
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(grid_host)
        fill(QVBoxLayout(self), row(QLabel("Left:"), (self.left, 1), QLabel("Right:"), (self.right, 1)),
             (scroll, 1))
        self.left.currentIndexChanged.connect(self._refresh)
        self.right.currentIndexChanged.connect(self._refresh)
        self._refresh()
        self.resize(1000, 700)

    def _refresh(self) -> None:
        left = self._samples.get(self.left.currentData(), [])
        right = self._samples.get(self.right.currentData(), [])
        for (prompt, a, b), pa, pb in zip_longest(self._cells, left, right, fillvalue=("", "")):
            prompt.setText(pa[0] or pb[0])
            a.set_path(pa[1])
            b.set_path(pb[1])
