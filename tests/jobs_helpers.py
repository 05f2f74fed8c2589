"""A stand-in for the WorkerClient that the test scripts: what the JobManager sends, and what it hears."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class ScriptedWorker(QObject):
    """The WorkerClient's surface, with the test playing the worker's part."""

    message_received = Signal(object)
    state_changed = Signal(str, str)

    def __init__(self, state: str = "ready") -> None:
        super().__init__()
        self.state, self.running, self.sent, self.starts = state, state != "stopped", [], 0

    def send(self, command) -> bool:
        if not self.running:
            return False
        self.sent.append(command)
        return True

    def start(self) -> None:
        self.starts += 1
        self.running = True
        self.set_state("starting")

    def set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state, state)

    def say(self, *messages) -> None:
        for m in messages:
            self.message_received.emit(m)
