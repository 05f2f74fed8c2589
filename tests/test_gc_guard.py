"""ui.gc_guard: with the guard on, cyclic garbage is only ever collected by the GUI thread."""

from __future__ import annotations

import gc
import threading

import pytest

pytest.importorskip("PySide6")

pytestmark = pytest.mark.gui


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cycles_are_freed_by_the_gui_thread_timer_not_by_other_threads(qapp, qtbot):
    from ui.gc_guard import install_gc_guard

    guard = install_gc_guard(qapp)
    assert install_gc_guard(qapp) is guard and not gc.isenabled()
    freed_on: list[str] = []

    class Tracked(_Cycle):
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    Tracked()  # unreachable at once, but only a cycle collection frees it

    def churn() -> None:  # allocation far past the thresholds, on another thread
        for _ in range(50):
            [_Cycle() for _ in range(2000)]

    thread = threading.Thread(target=churn, name="pool")
    thread.start()
    thread.join()
    assert freed_on == []  # nothing collected on the allocating thread
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)  # the guard's timer collects
    assert freed_on == [threading.main_thread().name]
