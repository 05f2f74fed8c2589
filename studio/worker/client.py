"""Starting and talking to a worker process, without Qt: used by the window's client, the CLI and tests.

The worker runs in its own session, so a Ctrl+C in the terminal reaches the window, which stops the worker
cleanly instead of killing it mid-save. Three threads keep the pipes moving so neither side blocks on a
full one (commands out, events in, the stderr tail for the "worker died" report). Everything the worker
says, ending with `WorkerExited`, goes to one callback, or to a queue when there is none.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studio.resources import project_root
from studio.worker import protocol as p

HEARTBEAT_TIMEOUT_S = 5.0  # five missed heartbeats → "not responding"


@dataclass(frozen=True)
class WorkerExited:
    """Made by the client (never sent on the wire) when the worker's output ends and the process is gone."""

    returncode: int | None
    expected: bool  # we asked it to exit (shutdown) or killed it ourselves (restart)
    stderr_tail: str = ""

    def describe(self) -> str:
        code = self.returncode
        if code is None:
            return "the worker process stopped"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            extra = " (the system may have run out of memory)" if name == "SIGKILL" else ""
            return f"the worker process was killed by {name}{extra}"
        return "the worker process exited" + (f" with code {code}" if code else "")


def worker_command() -> list[str]:
    """The command that starts a worker. A frozen app starts itself with `--studio-worker` (see `packaging/frozen_main.py`)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--studio-worker"]
    return [sys.executable, "-m", "studio.worker"]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    root = str(project_root())
    paths = [x for x in env.get("PYTHONPATH", "").split(os.pathsep) if x]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra or {})
    return env


class WorkerProcess:
    """Not restartable: make a new one after it exits."""

    def __init__(self, on_message: Callable[[Any], None] | None = None, *, command: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self._on_message = on_message
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._outbox: queue.Queue[p.Outgoing | None] = queue.Queue()
        self._command = command or worker_command()
        self._env = env
        self._proc: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=60)
        self._expected_exit = False
        self._exited = threading.Event()
        self.last_heard = 0.0  # time.monotonic() of the last line from the worker
        self.started_at = 0.0

    def start(self) -> None:
        kwargs: dict[str, Any] = ({"start_new_session": True} if os.name == "posix"  # else Windows:
                                  else {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)})
        self._proc = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=worker_env(self._env), cwd=str(project_root()),
                                      **kwargs)
        self.started_at = self.last_heard = time.monotonic()
        for target in (self._write_loop, self._read_loop, self._stderr_loop):
            threading.Thread(target=target, name=f"worker-client-{target.__name__.strip('_')}", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    def seconds_silent(self) -> float:
        return time.monotonic() - self.last_heard

    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def send(self, command: p.Outgoing) -> bool:
        """Queue a command; never blocks. False once the worker has gone."""
        if not self.running:
            return False
        p.encode(command)  # fail here, in the caller, if the command cannot be encoded
        self._outbox.put(command)
        return True

    def shutdown(self, timeout: float | None = 30.0) -> int | None:
        """Ask the worker to exit (a running job is stopped and saves first); kill it after `timeout`."""
        self._expected_exit = True
        self.send(p.Shutdown())
        if timeout is None:
            return None
        if not self._exited.wait(timeout):
            self.kill()
            self._exited.wait(5.0)
        return self._proc.returncode if self._proc else None

    def kill(self) -> None:
        """SIGKILL (TerminateProcess on Windows) the worker — for a hung one. Reported as expected."""
        self._expected_exit = True
        if self._proc and self._proc.poll() is None:
            self._proc.kill()

    def wait_exited(self, timeout: float | None = None) -> bool:
        return self._exited.wait(timeout)

    # queue-style consumption (no callback given): for the CLI and tests
    def get(self, timeout: float | None = None) -> Any:
        return self._inbox.get(timeout=timeout)

    def wait_for(self, accept: Callable[[Any], bool] | type | tuple[type, ...], timeout: float,
                 seen: list[Any] | None = None) -> Any:
        """The next message for which `accept` holds (or of that type); others go to `seen`. Raises
        TimeoutError, or RuntimeError if the worker exits first."""
        test = accept if not isinstance(accept, (type, tuple)) else (lambda m: isinstance(m, accept))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching worker message within {timeout} s")
            try:
                message = self._inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if test(message):
                return message
            if seen is not None:
                seen.append(message)
            if isinstance(message, WorkerExited):
                raise RuntimeError(f"{message.describe()}\n{message.stderr_tail}")

    def _deliver(self, message: Any) -> None:
        if self._on_message is None:
            self._inbox.put(message)
            return
        try:
            self._on_message(message)
        except Exception:  # a receiver's bug must not stop the reader (OneTrainer wraps its callbacks too)
            traceback.print_exc()

    def _write_loop(self) -> None:
        assert self._proc and self._proc.stdin
        stdin = self._proc.stdin
        writer = p.LineWriter(stdin)
        while True:
            command = self._outbox.get()
            if command is None or not writer.write(command):
                break
        with contextlib.suppress(OSError):
            stdin.close()

    def _read_loop(self) -> None:
        assert self._proc and self._proc.stdout
        for message in p.LineReader(self._proc.stdout, p.decode_event):
            self.last_heard = time.monotonic()
            self._deliver(message)
        code = self._proc.wait()
        self._outbox.put(None)
        self._exited.set()
        # let stderr finish draining so the report carries the worker's last words
        time.sleep(0.05)
        self._deliver(WorkerExited(returncode=code, expected=self._expected_exit, stderr_tail=self.stderr_tail()))

    def _stderr_loop(self) -> None:
        assert self._proc and self._proc.stderr
        for raw in iter(self._proc.stderr.readline, b""):
            self._stderr.append(raw.decode("utf-8", errors="replace"))
