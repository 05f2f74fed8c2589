"""Running small blocking jobs (disk scans, image decoding, reading run folders) off the GUI thread.

The relay lives on the GUI thread and its slots are bound methods, which makes the cross-thread signal a
queued connection — a plain lambda slot would run on the pool thread instead.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

_pending: set["_Relay"] = set()  # relays alive until their result is delivered


class _Relay(QObject):
    delivered = Signal(object, bool)  # the result or the exception, and whether `fn` returned

    def __init__(self, on_done: Callable[[Any], None] | None, on_error: Callable[[BaseException], None] | None):
        super().__init__()
        self._on_done, self._on_error = on_done, on_error
        self.delivered.connect(self._deliver)

    @Slot(object, bool)
    def _deliver(self, value: Any, ok: bool) -> None:
        _pending.discard(self)
        callback = self._on_done if ok else self._on_error
        if callback is None and not ok:
            traceback.print_exception(type(value), value, value.__traceback__)
        elif callback is not None:
            try:
                callback(value)
            except RuntimeError as exc:  # the widget that asked for it was closed meanwhile: drop it quietly
                if "already deleted" not in str(exc):
                    raise


class _Task(QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple, relay: _Relay) -> None:
        super().__init__()
        self._fn, self._args, self._relay = fn, args, relay

    def run(self) -> None:
        try:
            value, ok = self._fn(*self._args), True
        except BaseException as exc:  # delivered to the GUI thread, which decides what to show
            value, ok = exc, False
        try:
            self._relay.delivered.emit(value, ok)
        except RuntimeError:  # the relay went with the application (quitting): nobody is left to tell
            pass


def run_in_background(fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[BaseException], None] | None = None,
                      pool: QThreadPool | None = None) -> None:
    """Call `fn(*args)` on a pool thread; `on_done(result)` / `on_error(exc)` run later on the GUI thread.
    A `pool` of their own keeps slow jobs (pickled checkpoints) from holding up quick ones (saving)."""
    relay = _Relay(on_done, on_error)
    _pending.add(relay)
    (pool or QThreadPool.globalInstance()).start(_Task(fn, args, relay))
