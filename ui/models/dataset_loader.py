"""Brings a dataset in from disk without blocking the GUI: folder scans on a thread, thumbnails on a pool.

Both kinds of work are Qt-free (`studio.dataset.scan.iter_scan` in a `Stream`, `ThumbnailPool`); this
object polls them with one timer while anything is under way and turns what arrived into signals on the
GUI thread. Opening another dataset (`scan(..., replace=True)`) cancels the scans and drops the pending
thumbnails of the previous one, so nothing stale reaches the grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from studio.dataset.scan import ImageRecord, iter_scan
from studio.dataset.stream import Stream
from studio.dataset.thumbnail_pool import BACKGROUND, URGENT, Request, ThumbnailPool
from studio.dataset.thumbnails import ThumbnailCache

POLL_MS = 30  # how often scan chunks and finished thumbnails are collected while they come
SCAN_CHUNK = 256  # images per scan chunk: the first screen needs only the first one


class DatasetLoader(QObject):
    chunk_ready = Signal(list, list)  # records, problems
    scan_finished = Signal(list, object)  # the scanned roots, the exception that stopped the scan or None
    thumbnails_ready = Signal(list)  # [(path, Thumbnail)]
    idle = Signal()  # no scan running and no thumbnail pending, after some work

    def __init__(self, cache: ThumbnailCache, workers: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = ThumbnailPool(cache, workers)
        self._scans: list[tuple[Stream, int, list[Path]]] = []
        self._generation = 0
        self._busy = False
        self._timer = QTimer(self, interval=POLL_MS, timeout=self._tick)

    @property
    def scanning(self) -> bool:
        return bool(self._scans)

    def scan(self, roots: list[Path], *, caption_extension: str, default_repeats: int, replace: bool) -> None:
        if replace:
            self.reset()
        roots = list(roots)
        stream = Stream(lambda: iter_scan(roots, caption_extension=caption_extension,
                                          default_repeats=default_repeats, chunk=SCAN_CHUNK),
                        name="dataset-scan").start()
        self._scans.append((stream, self._generation, roots))
        self._wake()

    def reset(self) -> None:
        """Forget everything under way (another dataset is being opened)."""
        self._generation += 1
        for stream, _, _ in self._scans:
            stream.cancel()
        self._scans = []
        self.pool.reset()

    def request(self, record: ImageRecord) -> None:
        """One thumbnail, before those asked for in the background (a row the view is painting)."""
        self.pool.request(Request(record.path, record.size, record.mtime_ns), URGENT)
        self._wake()

    def request_all(self, records: Iterable[ImageRecord]) -> None:
        self.pool.request_many([Request(r.path, r.size, r.mtime_ns) for r in records], BACKGROUND)
        self._wake()

    def _wake(self) -> None:
        self._busy = True
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        for entry in list(self._scans):
            stream, generation, roots = entry
            chunks = stream.take()
            if generation == self._generation and chunks:
                # everything that arrived since the last tick in one insertion: each one costs the view a
                # relayout of the rows it already has
                self.chunk_ready.emit([r for recs, _ in chunks for r in recs], [p for _, ps in chunks for p in ps])
            if stream.finished:
                self._scans.remove(entry)
                if generation == self._generation:
                    self.scan_finished.emit(roots, stream.error)
        results = self.pool.take_results()
        if results:
            self.thumbnails_ready.emit(results)
        if not self._scans and self.pool.pending == 0 and not results:
            self._timer.stop()
            if self._busy:
                self._busy = False
                self.idle.emit()

    def shutdown(self) -> None:
        self._timer.stop()
        self.reset()
        self.pool.shutdown(wait=False)
