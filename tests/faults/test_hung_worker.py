"""A worker that stops answering (SIGSTOP: alive, silent) is detected by its missing heartbeats within a few
seconds and reported, while the window (offscreen) keeps handling events; a killed one is reported as such.

Responsiveness is measured, not assumed: a 20 ms QTimer records when it fires, and the longest gap between two
ticks while the worker hangs must stay far below what a person notices.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

pytest.importorskip("PySide6")

from tests.train_gui_helpers import alive, close_window, open_window  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.serial]
TIMEOUT_S = 2.0


class Ticks:
    def __init__(self, qtbot) -> None:
        from PySide6.QtCore import QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(lambda: self.times.append(time.monotonic()))
        self.timer.start()

    def max_gap(self, since: float) -> float:
        t = [x for x in self.times if x >= since]
        return max((b - a for a, b in zip(t, t[1:])), default=float("inf"))


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_stopped_worker_is_detected_and_the_window_stays_responsive(ledger, qtbot, tmp_path):
    from ui.worker_client import WorkerClient

    worker = WorkerClient(heartbeat_timeout_s=TIMEOUT_S)
    window = open_window(qtbot, tmp_path, None, worker=worker)
    ticks = Ticks(qtbot)
    states: list[tuple[float, str, str]] = []
    worker.state_changed.connect(lambda s, d: states.append((time.monotonic(), s, d)))
    try:
        qtbot.waitUntil(lambda: worker.pid is not None and worker.state in ("starting", "ready"), timeout=20_000)
        qtbot.wait(1500)  # let heartbeats flow
        pid = worker.pid
        for round_ in range(2):
            stopped_at = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            qtbot.waitUntil(lambda: worker.state == "unresponsive", timeout=int((TIMEOUT_S + 5) * 1000))
            detected = next(t for t, s, _ in reversed(states) if s == "unresponsive") - stopped_at
            # the window: still drawing, switching tabs, answering
            t0 = time.monotonic()
            window.tabs.setCurrentIndex((window.tabs.currentIndex() + 1) % window.tabs.count())
            assert not window.grab().isNull()
            ui_s = time.monotonic() - t0
            gap = ticks.max_gap(stopped_at)
            assert "has not answered" in worker.detail
            assert "Worker: unresponsive" in window.worker_label.text()
            os.kill(pid, signal.SIGCONT)
            qtbot.waitUntil(lambda: worker.state in ("ready", "starting"), timeout=10_000)
            ok = detected <= TIMEOUT_S + 2.0 and gap < 0.5 and ui_s < 1.0
            ledger.record("worker stops answering (SIGSTOP)", "recovered" if ok else "crash",
                          f"round {round_}: detected after {detected:.2f} s, longest UI stall {gap * 1000:.0f} ms, "
                          f"grab {ui_s * 1000:.0f} ms")
            assert detected <= TIMEOUT_S + 2.0, f"detected only after {detected:.1f} s"
            assert gap < 0.5, f"the event loop stalled for {gap * 1000:.0f} ms while the worker hung"
            assert ui_s < 1.0
        # a hung worker the user gives up on: restart replaces it and the old process is gone
        os.kill(pid, signal.SIGSTOP)
        qtbot.waitUntil(lambda: worker.state == "unresponsive", timeout=int((TIMEOUT_S + 5) * 1000))
        window.restart_worker()
        qtbot.waitUntil(lambda: worker.pid not in (None, pid) and worker.state in ("starting", "ready"),
                        timeout=20_000)
        qtbot.waitUntil(lambda: not alive(pid), timeout=10_000)
        ledger.record("worker stops answering (SIGSTOP)", "recovered", "restart replaced the hung worker")
    finally:
        ticks.timer.stop()
        close_window(window)


def test_a_killed_worker_is_reported_and_replaced(ledger, qtbot, tmp_path):
    from ui.worker_client import WorkerClient

    worker = WorkerClient(heartbeat_timeout_s=TIMEOUT_S)
    window = open_window(qtbot, tmp_path, None, worker=worker)
    details: list[str] = []
    worker.state_changed.connect(lambda s, d: details.append(f"{s}: {d}"))
    try:
        qtbot.waitUntil(lambda: worker.pid is not None and worker.state in ("starting", "ready"), timeout=20_000)
        pid = worker.pid
        os.kill(pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: any(d.startswith("dead:") for d in details), timeout=10_000)
        assert any("killed by SIGKILL" in d for d in details), details
        qtbot.waitUntil(lambda: worker.pid not in (None, pid), timeout=20_000)  # the window starts a new one
        ledger.record("worker killed while idle", "recovered")
    finally:
        close_window(window)
