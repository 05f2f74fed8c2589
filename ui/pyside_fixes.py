"""Work-arounds for bugs in the PySide6 release we run on, applied once when the `ui` package is imported.

PySide6 6.12.0 on CPython 3.11 returns None from void methods and True from `SignalInstance.emit()` without
taking a reference (correct only on 3.12+, where they are immortal); in time None or True is freed and the
interpreter aborts ("Fatal Python error: none_dealloc"). So, once, we give None, True and False a count no
program can use up (2⁴⁰), as 3.12 does, only where a probe measures the leak.
"""

from __future__ import annotations

import ctypes
import sys

_IMMORTAL = 1 << 40
_SINGLETONS = (None, True, False)
applied = False


def _count(obj: object) -> ctypes.c_ssize_t:
    """The reference count field (the first field of every object on CPython ≤ 3.11)."""
    return ctypes.c_ssize_t.from_address(id(obj))


def leaks_references(calls: int = 64) -> bool:
    """Whether void Qt calls or Python-side emits lose references to None/True (measured, not guessed)."""
    from PySide6.QtCore import QObject, QTimer, Signal

    class _Probe(QObject):
        ping = Signal()

    margin = 10 * calls
    for obj in _SINGLETONS:  # so the probe itself cannot free them in a small program
        _count(obj).value += margin
    probe, timer = _Probe(), QTimer()
    before = {id(o): sys.getrefcount(o) for o in _SINGLETONS}
    for _ in range(calls):
        probe.ping.emit()
        timer.setInterval(5)
    lost = {id(o): before[id(o)] - sys.getrefcount(o) for o in _SINGLETONS}
    for obj in _SINGLETONS:  # take the margin away again and give back what the probe took
        _count(obj).value -= margin - max(lost[id(obj)], 0)
    return any(n >= calls // 2 for n in lost.values())


def protect_singletons() -> bool:
    """Make None/True/False effectively immortal if (and only if) this PySide6 leaks references to them."""
    global applied
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    if leaks_references():
        for obj in _SINGLETONS:
            _count(obj).value += _IMMORTAL
        applied = True
    return applied
