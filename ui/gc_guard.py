"""Python's cyclic garbage collection, kept on the GUI thread.

The collector runs in whichever thread allocates when a threshold is crossed; a cycle holding a Qt widget
freed on a pool thread crashes the process (a segfault seen in the test suite). So automatic collection is
off and a GUI-thread timer collects with Python's own thresholds; only cycles wait for the next tick.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500
FULL_EVERY_S = 30.0  # Python's own rule (long-lived pending > 25 %) is not exposed; a time floor does the same job


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        gc.disable()
        # What exists now is the imported code and the app's long-lived state: leave it out of every later
        # full collection, which would otherwise scan ~10^5 objects (and stall the GUI) each time.
        gc.freeze()
        self._last_full = time.monotonic()
        self._timer = QTimer(self, interval=interval_ms, timeout=self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold; returns it, or -1 for none."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        due = [gen for gen in range(3) if thresholds[gen] and counts[gen] > thresholds[gen]]
        generation = max(due, default=-1)
        if generation == 2 and time.monotonic() - self._last_full < FULL_EVERY_S:
            generation = 1
        if generation >= 0:
            gc.collect(generation)
            if generation == 2:
                self._last_full = time.monotonic()
        return generation


def install_gc_guard(app: QObject) -> GuiThreadCollector:
    """Idempotent: one collector per application."""
    existing = app.findChild(GuiThreadCollector)
    if existing is not None:
        gc.disable()
        return existing
    return GuiThreadCollector(app)
