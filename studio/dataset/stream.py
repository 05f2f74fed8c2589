"""Running a generator on a background thread and collecting what it yields, for a GUI to poll.

The dataset scan yields records in chunks; the grid should show the first chunk while the disk is still
being read. No Qt here: the panel polls `take()` with the same timer that collects thumbnails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any


class Stream:
    def __init__(self, make: Callable[[], Iterator[Any]], name: str = "stream") -> None:
        self._make = make
        self._items: list[Any] = []
        self._lock = threading.Lock()
        self._cancelled = False
        self.done = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for item in self._make():
                if self._cancelled:
                    break
                with self._lock:
                    self._items.append(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the poller, which reports it
            self.error = exc
        finally:
            self.done = True

    def take(self) -> list[Any]:
        with self._lock:
            out, self._items = self._items, []
        return out

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def finished(self) -> bool:
        """Done and fully taken: nothing more will come."""
        with self._lock:
            return self.done and not self._items

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
