"""The worker process: `python -m studio.worker`, one per window, long-lived, reused for every job.

A process, so that a crash, an out-of-memory error or a minute-long step never freezes or takes down the
window; long-lived, because importing torch + diffusers + peft takes 7–9 s. Reading stdin, the heartbeat
and the warm-up have threads of their own, so a bad line, a busy job or a slow import never silences it.
The protocol owns the real stdout: fd 1 points at stderr, so a stray `print` cannot corrupt the stream.
End of stdin means the window is gone: the job is asked to stop (it saves) and the worker exits.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import queue
import sys
import threading
import time
from typing import IO, Any

from studio.events import Failed, Finished, Log
from studio.job_requests import JobRequest
from studio.worker import protocol as p

HEARTBEAT_S = 1.0
STOP_TIMEOUT_S = 120.0  # how long a shutdown waits for a running job to save and stop
_EOF = object()


class _EventLogHandler(logging.Handler):
    """Forwards log records as `log` events: logs cross the process boundary in the event stream."""

    def __init__(self, send) -> None:
        super().__init__()
        self._send = send
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a logging failure must never take the job down
            self._send(Log(level=record.levelname.lower(), text=self.format(record)))


class Worker:
    def __init__(self, stdin: IO[bytes], stdout: IO[bytes], *, heartbeat_s: float = HEARTBEAT_S,
                 warm_up: bool = True) -> None:
        self._reader = p.LineReader(stdin, p.decode_command)
        self._writer = p.LineWriter(stdout)
        self._heartbeat_s = heartbeat_s
        self._do_warm_up = warm_up
        self._commands: queue.Queue[Any] = queue.Queue()
        self._exiting = threading.Event()
        self._ready = threading.Event()
        self._warm_error: Failed | None = None
        self._lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._job_kind: str | None = None  # the running request's type name
        self._job_title = ""  # and how a person calls it ("training", "mixer preview")
        self._control: Any = None
        self._ending = False  # the running job has sent its Finished/Failed event
        self._job_ids = itertools.count(1)

    def send(self, message: p.Message) -> None:
        try:
            self._writer.write(message)
        except p.ProtocolError as exc:  # oversized: say so instead of losing the message silently
            self._writer.write(p.WorkerError(error=f"dropped a message: {exc}"))

    def serve(self) -> int:
        self.send(p.Starting(pid=os.getpid()))
        handler = _EventLogHandler(self.send)
        logging.getLogger().addHandler(handler)
        logging.getLogger("studio").setLevel(logging.INFO)
        logging.captureWarnings(True)
        for target in (self._read_commands, self._heartbeat, self._warm_up):
            threading.Thread(target=target, name=f"worker-{target.__name__.strip('_')}", daemon=True).start()
        try:
            while True:
                item = self._commands.get()
                if item is _EOF or isinstance(item, p.Shutdown):
                    return self._shutdown()
                if isinstance(item, p.ProtocolError):
                    self.send(p.WorkerError(error=f"ignored a bad command line: {item}",
                                            hint="the window and the worker may come from different versions"))
                    continue
                self._handle(item)
        finally:
            self._exiting.set()
            logging.getLogger().removeHandler(handler)

    def _read_commands(self) -> None:
        for item in self._reader:
            self._commands.put(item)
        self._commands.put(_EOF)

    def _heartbeat(self) -> None:
        seq = 0
        while not self._exiting.wait(self._heartbeat_s):
            seq += 1
            with self._lock:
                busy, kind = self._job is not None, self._job_kind
            self.send(p.Heartbeat(seq=seq, busy=busy, job=kind))

    def _warm_up(self) -> None:
        t0 = time.perf_counter()
        torch_version, device = "", "cpu"
        try:
            if self._do_warm_up:
                if not self._install_is_usable():
                    return
                import torch

                import studio.train.engine  # noqa: F401 - imports diffusers, transformers, peft, accelerate

                torch_version = str(torch.__version__)  # TorchVersion is a str subclass the codec refuses
                if torch.cuda.is_available():
                    device = torch.cuda.get_device_name(0)
        except BaseException as exc:  # a broken install: every job will fail with this message
            from studio.install_check import repair_command
            from studio.worker.failures import failed_from_exception

            failed = failed_from_exception(exc)
            self._warm_up_failed(Failed(error=f"cannot load the training libraries: {failed.error}",
                                        hint=f"repair the installation with: {repair_command()}",
                                        traceback=failed.traceback))
        else:
            self.send(p.Ready(pid=os.getpid(), python=platform.python_version(), torch=torch_version, device=device,
                              import_s=round(time.perf_counter() - t0, 3)))
        finally:
            self._ready.set()

    def _warm_up_failed(self, failed: Failed) -> None:
        """Every job will fail with this; the window hears it now."""
        self._warm_error = failed
        self.send(p.WorkerError(error=failed.error, hint=failed.hint, traceback=failed.traceback))

    def _install_is_usable(self) -> bool:
        """Before the slow imports: libraries known not to work together fail every job with the repair command."""
        from studio.install_check import BrokenInstallError, require_working_install

        try:
            report = require_working_install()
        except BrokenInstallError as exc:
            self._warm_up_failed(Failed(error=str(exc),
                                        hint="close LoRA Studio, run that command, and start it again"))
            return False
        if report.warning():
            self.send(Log(level="warning", text=report.warning()))
        return True

    def _handle(self, cmd: p.Command | JobRequest) -> None:
        if isinstance(cmd, p.Ping):
            self.send(p.Pong(nonce=cmd.nonce))
        elif isinstance(cmd, JobRequest):
            self._start_job(cmd)
        else:
            with self._lock:
                control = self._control if self._job is not None else None
            if control is None:
                self.send(Log(level="debug", text=f"`{cmd.type}` ignored: no job is running"))
                return
            # the closed command table leaves only these here (shutdown and ping are answered above)
            {p.Pause: control.request_pause, p.Resume: control.request_resume, p.Stop: control.request_stop,
             p.SaveNow: control.request_save, p.SampleNow: control.request_sample}[type(cmd)]()

    def _start_job(self, request: JobRequest) -> None:
        from studio.train.control import TrainControl

        with self._lock:
            job, ending = self._job, self._ending
        if job is not None and ending:  # it has sent its last event and is only tidying up: let it finish
            job.join(30.0)
        with self._lock:
            if self._job is not None:
                self.send(p.WorkerError(error=f"a {self._job_title} job is already running",
                                        hint="stop it first, or wait until it has finished",
                                        request_id=request.request_id))
                return
            self._control = TrainControl()
            self._job_kind, self._job_title = request.type, request.title
            self._ending = False
            self._job = threading.Thread(target=self._run_job, args=(request, self._control),
                                         name=f"job-{request.type}", daemon=True)
            self._job.start()

    def _run_job(self, request: JobRequest, control: Any) -> None:
        ended = False
        job_id, kind, request_id = next(self._job_ids), request.type, request.request_id
        self.send(p.JobStarted(job_id=job_id, kind=kind, request_id=request_id))
        try:
            self._ready.wait()
            from studio.worker.jobs import resolve_job

            events = [self._warm_error] if self._warm_error else resolve_job(request)(request, control)
            for event in events:
                ended = isinstance(event, (Finished, Failed))
                if ended:
                    self._ending = True
                self.send(event)
        except BaseException as exc:
            from studio.worker.failures import failed_from_exception

            failed = failed_from_exception(exc)
            self.send(Log(level="error", text=failed.traceback))
            self._ending = ended = True
            self.send(failed)
        finally:
            if not ended:
                self._ending = True
                self.send(Finished(outputs=(), stopped=control.stop_requested))
            _release_gpu_memory()
            self.send(p.JobEnded(job_id=job_id, kind=kind, request_id=request_id))  # before the slot frees: no next job_started first
            with self._lock:
                self._job, self._job_kind = None, None

    def _shutdown(self) -> int:
        with self._lock:
            job, control = self._job, self._control
        if job is not None:
            control.request_stop()
            job.join(STOP_TIMEOUT_S)
            if job.is_alive():
                self.send(p.WorkerError(error=f"the job did not stop within {STOP_TIMEOUT_S:.0f} s; "
                                              "exiting without waiting for it"))
                return 3
        return 0


def _release_gpu_memory() -> None:
    """After a job (above all a failed one) give cached GPU memory back, so the next job starts clean."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()


def _lower_priority() -> None:
    """Run a notch below the window, so that when both want the CPU the window keeps answering the user."""
    nice = int(os.environ.get("STUDIO_WORKER_NICE", "5") or 0)
    if nice > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)


def _claim_stdio() -> tuple[IO[bytes], IO[bytes]]:
    """Take stdin/stdout for the protocol and point fd 1 (and sys.stdout) at stderr for everything else."""
    proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    proto_in = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    sys.stdin = open(os.devnull, encoding="utf-8")
    return proto_in, proto_out


def main() -> int:
    # HF_HUB_OFFLINE: nothing the worker runs may reach a model hub
    for name, value in (("HF_HUB_OFFLINE", "1"), ("DIFFUSERS_VERBOSITY", "error"),
                        ("TRANSFORMERS_VERBOSITY", "error"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    _lower_priority()
    stdin, stdout = _claim_stdio()
    heartbeat = float(os.environ.get("STUDIO_WORKER_HEARTBEAT_S", HEARTBEAT_S))
    code = Worker(stdin, stdout, heartbeat_s=heartbeat).serve()
    sys.stderr.flush()
    stdout.flush()
    # daemon threads may be deep inside torch (a warm-up import, a stuck job): leave without joining them
    os._exit(code)
