"""The thumbnail grid: a virtualised QListView in icon mode.

Uniform item sizes and batched layout let Qt lay out 10,000 cells without asking each one its size; only
the cells on screen are painted, and painting is what requests their thumbnails (see DatasetModel). The
empty-grid hint and the drop highlight are painted in palette colours, so they follow the dark theme.
"""

from __future__ import annotations

from itertools import takewhile

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QWheelEvent
from PySide6.QtWidgets import QAbstractItemView, QListView

from ui.widgets.thumbnail_delegate import ThumbnailDelegate

MIN_SIDE, MAX_SIDE = 64, 256
EMPTY_HINT = ("Drop image folders here — or use Add folder…\n\n"
              "Folders are used where they are; captions are the .txt files beside the images.")


class DatasetGrid(QListView):
    zoom_requested = Signal(int)  # +1 / -1 from Ctrl+wheel

    def __init__(self, parent=None, side: int = 128) -> None:
        super().__init__(parent, viewMode=QListView.ViewMode.IconMode, resizeMode=QListView.ResizeMode.Adjust,
                         movement=QListView.Movement.Static, uniformItemSizes=True,
                         layoutMode=QListView.LayoutMode.Batched, batchSize=2000,
                         selectionMode=QAbstractItemView.SelectionMode.ExtendedSelection,
                         verticalScrollMode=QAbstractItemView.ScrollMode.ScrollPerPixel, wrapping=True,
                         spacing=2, mouseTracking=True, dragEnabled=False,
                         acceptDrops=False)  # drops go to the panel, which knows what to do with folders
        self.viewport().setAcceptDrops(False)
        self.delegate = ThumbnailDelegate(self, side)
        self.setItemDelegate(self.delegate)
        self.empty_hint = EMPTY_HINT  # painted while the model has no rows ("" paints nothing)
        self.drop_highlight = False
        self.set_side(side)

    def set_empty_hint(self, text: str) -> None:
        if text != self.empty_hint:
            self.empty_hint = text
            self.viewport().update()

    def set_drop_highlight(self, on: bool) -> None:
        if on != self.drop_highlight:
            self.drop_highlight = on
            self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        model = self.model()
        show_hint = bool(self.empty_hint) and (model is None or model.rowCount() == 0)
        if not (show_hint or self.drop_highlight):
            return
        painter = QPainter(self.viewport())
        rect = self.viewport().rect()
        if self.drop_highlight:
            accent = self.palette().color(QPalette.ColorRole.Highlight)
            tint = QColor(accent)
            tint.setAlpha(48)
            painter.fillRect(rect, tint)
            painter.setPen(QPen(accent, 3, Qt.PenStyle.DashLine))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        if show_hint:
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.25)
            painter.setFont(font)
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(rect.adjusted(24, 24, -24, -24),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.empty_hint)
        painter.end()

    def set_side(self, side: int) -> None:
        side = max(MIN_SIDE, min(MAX_SIDE, side))
        self.delegate.side = side
        hint = self.delegate.sizeHint(None, None)
        self.setGridSize(QSize(hint.width() + 4, hint.height() + 4))
        self.setIconSize(QSize(side, side))
        self.verticalScrollBar().setSingleStep(max(20, side // 4))
        self.scheduleDelayedItemsLayout()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_requested.emit(1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    def visible_rows(self) -> list[int]:
        """Proxy rows whose cells intersect the viewport (used by the benchmark and the screenshot)."""
        model = self.model()
        if model is None or model.rowCount() == 0:
            return []
        rect = self.viewport().rect()
        first = self.indexAt(rect.topLeft() + QPoint(4, 4))
        if not first.isValid():
            first = model.index(0, 0)
        cells = ((row, self.visualRect(model.index(row, 0))) for row in range(first.row(), model.rowCount()))
        on_screen = takewhile(lambda cell: cell[1].top() <= rect.bottom(), cells)
        return [row for row, r in on_screen if r.intersects(rect)]
