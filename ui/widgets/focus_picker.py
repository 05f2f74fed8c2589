"""The current image, large, where a click sets the training crop's focus point and a drag draws a crop box.

Training scales each image to cover its resolution and crops around the focus point (the centre by default);
a crop box first cuts the image to that region."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget


class FocusPicker(QWidget):
    focus_changed = Signal(object)  # (x, y) fractions, or None
    crop_changed = Signal(object)  # (left, top, right, bottom) fractions, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, minimumHeight=120, cursor=Qt.CursorShape.CrossCursor, toolTip=(
            "Click: focus point for the training crop. Drag: crop box. Right-click: clear both."))
        self._pix = QPixmap()
        self.focus: tuple[float, float] | None = None
        self.crop: tuple[float, float, float, float] | None = None
        self._drag_from: QPointF | None = None
        self._drag_to: QPointF | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 200)

    def show_image(self, pix: QPixmap | None, focus=None, crop=None) -> None:
        self._pix = pix if pix is not None else QPixmap()
        self.focus, self.crop = focus, crop
        self.setEnabled(not self._pix.isNull())
        self.update()

    def image_rect(self) -> QRect:
        if self._pix.isNull():
            return QRect()
        size = self._pix.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRect(0, 0, size.width(), size.height())
        rect.moveCenter(self.rect().center())
        return rect

    def _fraction(self, pos: QPointF) -> tuple[float, float]:
        r = self.image_rect()
        x = (pos.x() - r.x()) / max(1, r.width())
        y = (pos.y() - r.y()) / max(1, r.height())
        return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        r = self.image_rect()
        if r.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No image")
            return
        painter.drawPixmap(r, self._pix)
        dragging = self._drag_from is not None and self._drag_to is not None
        box = self._box(self._drag_from, self._drag_to) if dragging else self.crop
        if box is not None:
            rect = QRectF(r.x() + box[0] * r.width(), r.y() + box[1] * r.height(),
                          (box[2] - box[0]) * r.width(), (box[3] - box[1]) * r.height())
            painter.fillRect(QRectF(r), QColor(0, 0, 0, 90))
            painter.drawPixmap(rect, self._pix, QRectF(box[0] * self._pix.width(), box[1] * self._pix.height(),
                                                       (box[2] - box[0]) * self._pix.width(),
                                                       (box[3] - box[1]) * self._pix.height()))
            painter.setPen(QPen(QColor("#f1c40f"), 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(rect)
        if self.focus is not None:
            x = r.x() + self.focus[0] * r.width()
            y = r.y() + self.focus[1] * r.height()
            for colour, width in (("white", 4), ("#e67e22", 2)):
                painter.setPen(QPen(QColor(colour), width))
                painter.drawEllipse(QPointF(x, y), 8, 8)
                painter.drawLine(QPointF(x - 14, y), QPointF(x + 14, y))
                painter.drawLine(QPointF(x, y - 14), QPointF(x, y + 14))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.image_rect().isNull():
            return
        if event.button() == Qt.MouseButton.RightButton:
            self.focus, self.crop = None, None
            self.focus_changed.emit(None)
            self.crop_changed.emit(None)
            self.update()
            return
        self._drag_from = self._drag_to = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._drag_from is not None:
            self._drag_to = event.position()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._drag_from is None:
            return
        start, end = self._drag_from, event.position()
        self._drag_from = self._drag_to = None
        if (end - start).manhattanLength() < 6:
            self.focus = self._fraction(end)
            self.focus_changed.emit(self.focus)
        else:
            box = self._box(start, end)
            if box[2] - box[0] > 0.02 and box[3] - box[1] > 0.02:
                self.crop = box
                self.crop_changed.emit(self.crop)
        self.update()

    def _box(self, start: QPointF, end: QPointF) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self._fraction(start), self._fraction(end)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
