"""Work-arounds for bugs in the PySide6 release we run on, applied once when the `ui` package is imported.

PySide6 6.12.0: `SignalInstance.emit()` returns `True` without taking a reference to it, so every signal
emitted from Python drops one reference to the `True` singleton. A window that relays a worker message
per second — or a test suite that emits a few thousand signals — eventually drives True's count to zero
and the interpreter aborts with "Fatal Python error: bool_dealloc" (seen first at exit, during garbage
collection). Python 3.12+ makes True and False immortal, which is immune; on 3.10/3.11 we do what 3.12
does: give both singletons a reference count no program can use up. Applied only where a probe shows the
leak, so a fixed PySide6 or a newer Python leaves the interpreter untouched.
"""

from __future__ import annotations

import ctypes
import sys

_IMMORTAL = 1 << 40  # references added to True/False: a leak of one per emit never reaches zero
applied = False


def emit_leaks_true(emits: int = 64) -> bool:
    """Whether emitting a signal from Python loses a reference to True (measured, not version-guessed)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    count = ctypes.c_ssize_t.from_address(id(True))
    margin = 10 * emits
    count.value += margin  # so the probe itself cannot free True in a small program
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(emits):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    count.value -= margin - max(lost, 0)  # remove the margin, give back what the probe took
    return lost >= emits // 2


def protect_bool_singletons() -> bool:
    """Make True/False effectively immortal if (and only if) this PySide6 leaks references to them."""
    global applied
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    if emit_leaks_true():
        for singleton in (True, False):
            ctypes.c_ssize_t.from_address(id(singleton)).value += _IMMORTAL
        applied = True
    return applied
