"""Paints one grid cell (thumbnail, name, focus cross, badges): painting is all there is, no widget per cell.

The cell's item is read from the source model directly rather than through `index.data(role)`: besides
saving a QVariant round trip per badge, PySide6 6.12 returns None for an empty QVariant without taking a
reference, and thousands of paints would eventually free None itself and crash the interpreter.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ui.models.dataset_model import DatasetItem, DatasetModel

TEXT_HEIGHT = 18
PAD = 6


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, parent=None, side: int = 128) -> None:
        super().__init__(parent)
        self.side = side
        self._font_key = ""
        self._bold = self._small = QFont()
        self._small_metrics: QFontMetrics | None = None

    def _fonts(self, base: QFont) -> None:
        """Badge fonts, made once per view font rather than once per cell."""
        if base.key() == self._font_key:
            return
        self._font_key = base.key()
        self._bold = QFont(base)
        self._bold.setBold(True)
        self._small = QFont(base)
        self._small.setPointSizeF(max(6.5, base.pointSizeF() * 0.8))
        self._small_metrics = QFontMetrics(self._small)

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.side + 2 * PAD, self.side + 2 * PAD + TEXT_HEIGHT)

    @staticmethod
    def item_at(index) -> tuple[DatasetModel, int, DatasetItem] | None:
        model = index.model()
        while hasattr(model, "mapToSource"):
            index = model.mapToSource(index)
            model = model.sourceModel()
        if isinstance(model, DatasetModel) and 0 <= index.row() < len(model.items):
            return model, index.row(), model.items[index.row()]
        return None

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        found = self.item_at(index)
        if found is None:
            return
        model, row, item = found
        self._fonts(option.font)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected or option.state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.highlight() if selected else palette.midlight())
            painter.drawRoundedRect(QRectF(rect).adjusted(1, 1, -1, -1), 6, 6)

        box = QRect(rect.x() + PAD, rect.y() + PAD, self.side, self.side)
        pix = model.pixmap(row)
        if pix is not None and not pix.isNull():
            size = pix.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            image_rect = QRect(0, 0, size.width(), size.height())
            image_rect.moveCenter(box.center())
            painter.drawPixmap(image_rect, pix)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(128, 128, 128, 40))
            painter.drawRoundedRect(QRectF(box), 4, 4)
            if item.thumb_error:
                painter.setPen(QColor("#c0392b"))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "cannot\nread")
            image_rect = box

        if item.excluded:
            painter.fillRect(image_rect, QColor(255, 255, 255, 150))
            self._pill(painter, image_rect, "excluded", QColor("#555555"), centre=True)

        focus = item.focus
        if focus is not None and pix is not None:
            fx = image_rect.x() + focus[0] * image_rect.width()
            fy = image_rect.y() + focus[1] * image_rect.height()
            for colour, width in (("white", 3), ("#e67e22", 1.5)):
                painter.setPen(QPen(QColor(colour), width))
                painter.drawLine(QPointF(fx - 6, fy), QPointF(fx + 6, fy))
                painter.drawLine(QPointF(fx, fy - 6), QPointF(fx, fy + 6))

        if item.problems:
            invalid = any(p.excluded for p in item.problems)
            self._badge(painter, box, "!" if invalid else "i", QColor("#d9534f" if invalid else "#e0a800"))
        if not item.caption:
            self._pill(painter, QRect(box.x() + 3, box.bottom() - 19, box.width(), 18), "no caption",
                       QColor("#2c7be5"))

        painter.setFont(option.font)
        text_rect = QRect(rect.x() + 2, box.bottom() + 3, rect.width() - 4, TEXT_HEIGHT)
        painter.setPen(palette.highlightedText().color() if selected else palette.text().color())
        name = option.fontMetrics.elidedText(item.path.name, Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        painter.restore()

    def _badge(self, painter: QPainter, box: QRect, text: str, colour: QColor) -> None:
        d = 18
        circle = QRectF(box.right() - d - 2, box.y() + 2, d, d)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(QBrush(colour))
        painter.drawEllipse(circle)
        painter.setFont(self._bold)
        painter.setPen(QColor("white"))
        painter.drawText(circle, Qt.AlignmentFlag.AlignCenter, text)

    def _pill(self, painter: QPainter, area: QRect, text: str, colour: QColor, centre: bool = False) -> None:
        painter.setFont(self._small)
        width = self._small_metrics.horizontalAdvance(text) + 10
        height = self._small_metrics.height() + 2
        pill = QRectF(area.x(), area.y(), width, height)
        if centre:
            pill.moveCenter(QRectF(area).center())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(QColor("white"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
