"""The window's side of the worker: start it, send commands, relay everything it says, watch its pulse.

Every message becomes one generic `message_received(object)` on the GUI thread and the receivers decide
what it means (qtconsole's design); the client only tracks the worker's health:

    stopped → starting → ready ⇄ unresponsive (no heartbeat for a few seconds) → dead / stopped
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from studio.worker import protocol as p
from studio.worker.client import HEARTBEAT_TIMEOUT_S, WorkerExited, WorkerProcess

WATCH_MS = 500


class WorkerClient(QObject):
    message_received = Signal(object)  # every event, ProtocolError and finally WorkerExited
    state_changed = Signal(str, str)  # (state, human-readable detail)
    _incoming = Signal(object)  # (process, message) from the reader thread

    def __init__(self, parent: QObject | None = None, *, heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
                 command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        super().__init__(parent)
        self._timeout = heartbeat_timeout_s
        self._command, self._env = command, env
        self._proc: WorkerProcess | None = None
        self._token: object = None
        self.state = "stopped"
        self.detail = ""
        self.info: p.Ready | None = None
        self._incoming.connect(self._on_incoming)
        self._watchdog = QTimer(self, interval=WATCH_MS, timeout=self._check_pulse)

    # ---------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    def start(self) -> None:
        """Start a worker unless one is running. Shows `starting` at once: the imports take seconds."""
        if self.running:
            return
        token = object()  # tells this worker's messages from those of one it replaced
        proc = WorkerProcess(on_message=lambda message: self._from_reader(token, message),
                             command=self._command, env=self._env)
        self._proc, self._token = proc, token
        self.info = None
        self._set_state("starting", "starting the worker (loading PyTorch)…")
        try:
            proc.start()
        except OSError as exc:
            self._proc = None
            self._set_state("dead", f"cannot start the worker: {exc}")
            return
        self._watchdog.start()

    def restart(self) -> None:
        old = self._proc
        self._proc, self._token = None, None
        if old is not None:
            old.kill()
        self.start()

    def send(self, command: p.Command) -> bool:
        return self.running and self._proc.send(command)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Ask the worker to stop its job (it saves) and exit; kill it if it is still there after `timeout_s`."""
        proc = self._proc
        if proc is None or not proc.running:
            return
        proc.shutdown(timeout=None)
        self._set_state("stopping", "stopping the worker…")
        QTimer.singleShot(int(timeout_s * 1000), self, lambda: proc.kill() if proc.running else None)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()

    def wait_exited(self, timeout_s: float) -> bool:
        """Block until the worker process is gone (tests and the last moments of the app)."""
        return self._proc is None or self._proc.wait_exited(timeout_s)

    # ---------------------------------------------------------------------------------------------
    def _from_reader(self, token: object, message: Any) -> None:
        """Reader thread → GUI thread (a queued signal). After the window is gone, messages are dropped."""
        try:
            self._incoming.emit((token, message))
        except RuntimeError:  # this QObject was deleted (window closed) while its worker was still talking
            pass

    @Slot(object)
    def _on_incoming(self, item: tuple[object, Any]) -> None:
        token, message = item
        if token is not self._token:
            return  # from a worker we already replaced
        if isinstance(message, p.Starting):
            self._set_state("starting", f"worker {message.pid} is loading PyTorch…")
        elif isinstance(message, p.Ready):
            self.info = message
            self._set_state("ready", f"worker ready ({message.device}, torch {message.torch}, "
                                     f"loaded in {message.import_s:.1f} s)")
        elif isinstance(message, p.Heartbeat) and self.state == "unresponsive":
            self._set_state("ready" if self.info else "starting", "the worker is responding again")
        elif isinstance(message, WorkerExited):
            self._watchdog.stop()
            self._proc, self._token = None, None
            self._set_state("stopped" if message.expected else "dead", message.describe())
        self.message_received.emit(message)

    def _check_pulse(self) -> None:
        proc = self._proc
        if proc is None or not proc.running or self.state in ("stopping", "unresponsive"):
            return
        silent = proc.seconds_silent()
        if silent > self._timeout:
            self._set_state("unresponsive", f"the worker has not answered for {silent:.0f} s")

    def _set_state(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)
