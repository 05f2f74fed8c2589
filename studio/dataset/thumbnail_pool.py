"""A pool of threads that makes thumbnails, most urgent first.

The grid asks for the thumbnails it is about to paint (urgent) and, once a dataset is opened, for all the
others (background), so scrolling later finds them ready; asking again more urgently moves an image ahead
without making it twice. Results collect in a list the GUI drains on a timer: one lock per batch instead
of one cross-thread signal per image.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from studio.dataset.thumbnails import Thumbnail, ThumbnailCache

URGENT = 0
BACKGROUND = 10


@dataclass(frozen=True)
class Request:
    path: Path
    size: int = -1
    mtime_ns: int = 0


class ThumbnailPool:
    def __init__(self, cache: ThumbnailCache, workers: int | None = None) -> None:
        self.cache = cache
        self._heap: list[tuple[int, int, int, Request]] = []
        self._best: dict[Path, int] = {}  # pending path → most urgent priority asked
        self._results: list[tuple[Path, Thumbnail]] = []
        self._generation = 0
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._busy = 0
        n = workers or max(1, min(4, os.cpu_count() or 1))
        self._threads = [threading.Thread(target=self._run, name=f"thumbnails-{i}", daemon=True) for i in range(n)]
        for t in self._threads:
            t.start()

    def request(self, req: Request, priority: int = URGENT) -> None:
        self.request_many([req], priority)

    def request_many(self, reqs: list[Request], priority: int = BACKGROUND) -> None:
        with self._cv:
            for req in reqs:
                best = self._best.get(req.path)
                if best is not None and best <= priority:
                    continue
                self._best[req.path] = priority
                heapq.heappush(self._heap, (priority, next(self._seq), self._generation, req))
            self._cv.notify_all()

    def take_results(self) -> list[tuple[Path, Thumbnail]]:
        with self._cv:
            out, self._results = self._results, []
        return out

    @property
    def pending(self) -> int:
        with self._cv:
            return len(self._best) + self._busy

    def reset(self) -> None:
        """Drop every pending request and any result not yet taken (another dataset was opened)."""
        with self._cv:
            self._generation += 1
            self._heap.clear()
            self._best.clear()
            self._results.clear()

    def shutdown(self, wait: bool = True) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._best.clear()
            self._cv.notify_all()
        if wait:
            for t in self._threads:
                t.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._stopped:
                    self._cv.wait()
                if self._stopped:
                    return
                priority, _, generation, req = heapq.heappop(self._heap)
                if generation != self._generation or self._best.get(req.path) != priority:
                    continue  # a stale entry: re-asked more urgently, already done, or from an old dataset
                del self._best[req.path]
                self._busy += 1
            try:
                thumb = self.cache.get(req.path, req.size, req.mtime_ns)
            except Exception as exc:  # noqa: BLE001 - never let one file kill a worker thread
                thumb = Thumbnail(error=str(exc))
            with self._cv:
                self._busy -= 1
                if generation == self._generation:
                    self._results.append((req.path, thumb))
