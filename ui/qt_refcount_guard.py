"""A guard against PySide6 6.12's lost references to None and True on Python 3.11.

PySide6 6.12.0, running on CPython 3.11, returns None from every void method (``label.setText(...)``,
``timer.start()``) and True from ``Signal.emit`` without taking a reference — correct only on Python 3.12+,
where those objects are immortal. Each call therefore lowers their reference count by one, and after a
few thousand calls the interpreter frees None and aborts ("Fatal Python error: none_dealloc"). 6.11.2 does
not have the bug; pinning it (or Python ≥ 3.12) is the real fix.

Until then `install(app)` checks whether the running PySide6 has the bug and, only if it does, keeps the
reference counts of None, True and False far above zero with a timer — in effect the immortality these
objects have on newer Pythons. On a fixed PySide6 or a newer Python it does nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys

FLOOR = 1_000_000
TOP_UP = 50_000_000
CHECK_MS = 1000
_SINGLETONS = (None, True, False)


def bug_present() -> bool:
    """True if a void Qt call or a signal emission lowers a singleton's reference count here."""
    if platform.python_implementation() != "CPython" or sys.version_info >= (3, 12):
        return False  # immortal singletons: nothing to guard
    from PySide6.QtCore import QObject, QTimer, Signal

    class _Probe(QObject):
        fired = Signal()

    timer, probe = QTimer(), _Probe()
    none, true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(20):
        timer.setInterval(5)
        probe.fired.emit()
    return sys.getrefcount(None) < none - 10 or sys.getrefcount(True) < true - 10


def top_up() -> None:
    """Raise the reference counts of None, True and False back far above zero (CPython ≤ 3.11 layout:
    the count is the object's first field)."""
    for obj in _SINGLETONS:
        if sys.getrefcount(obj) < FLOOR:
            ctypes.c_ssize_t.from_address(id(obj)).value += TOP_UP


_timer = None


def install(app) -> bool:
    """Start guarding if this PySide6 needs it; returns whether it does. Safe to call more than once."""
    global _timer
    if _timer is not None:
        return True
    if not bug_present():
        return False
    from PySide6.QtCore import QTimer

    top_up()
    _timer = QTimer(app)
    _timer.setInterval(CHECK_MS)
    _timer.timeout.connect(top_up)
    _timer.start()
    return True
