"""Commands into a running training loop: stop, pause, resume, save now, sample now.

The loop polls these flags between steps (OneTrainer's "commands" channel), so whoever drives it only
flips flags and never touches the loop.
"""

from __future__ import annotations

import threading


class TrainControl:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._save = threading.Event()
        self._sample = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused loop must wake up to stop

    def request_pause(self) -> None:
        self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    def request_save(self) -> None:
        self._save.set()

    def request_sample(self) -> None:
        self._sample.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float) -> None:
        self._running.wait(timeout)

    def take_save(self) -> bool:
        if self._save.is_set():
            self._save.clear()
            return True
        return False

    def take_sample(self) -> bool:
        if self._sample.is_set():
            self._sample.clear()
            return True
        return False
