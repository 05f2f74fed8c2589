"""No value changes without intent: a wheel over an unfocused spin box or combo box scrolls the form instead.

The filter forwards the event to the scroll area itself: Qt passes an ignored wheel event on to the parent
only for real mouse events.
"""

from __future__ import annotations

import functools

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget

GUARDED = (QAbstractSpinBox, QComboBox)
_GUARDED_PROPERTY = "loraStudioWheelGuard"


class _WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            area = _scroll_area_of(watched)
            if area is None:
                event.ignore()  # nothing to scroll: a real mouse event goes on to the parent
                return True
            viewport = area.viewport()
            pos = QPointF(viewport.mapFromGlobal(event.globalPosition().toPoint()))
            forwarded = QWheelEvent(pos, event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                                    event.buttons(), event.modifiers(), event.phase(), event.inverted())
            QApplication.sendEvent(viewport, forwarded)
            event.accept()  # handled (by the scroll area): Qt must not pass it up a second time
            return True
        return False


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


@functools.cache
def _shared() -> _WheelGuard:
    return _WheelGuard()


def guard_wheel(widget: QWidget) -> QWidget:
    if not widget.property(_GUARDED_PROPERTY):
        widget.setProperty(_GUARDED_PROPERTY, True)
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_shared())
    return widget


def guard_wheel_in(root: QWidget) -> int:
    widgets = [w for w in [root, *root.findChildren(QWidget)] if isinstance(w, GUARDED)]
    for w in widgets:
        guard_wheel(w)
    return len(widgets)
