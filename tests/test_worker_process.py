"""The worker process without Qt: lifecycle, heartbeats, bad input, failures with hints, no orphans."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest

from studio import events as ev
from studio.job_requests import JobRequest, TrainRequest
from studio.worker import jobs
from studio.worker import protocol as p
from studio.worker.client import WorkerExited, WorkerProcess
from studio.worker.failures import GPU_OOM_HINT
from studio.worker.process import Worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def worker():
    w = WorkerProcess()
    w.start()
    yield w
    w.kill()
    w.wait_exited(10)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_worker_announces_itself_heartbeats_answers_and_exits_cleanly(worker):
    first = worker.get(timeout=30)
    assert isinstance(first, p.Starting) and first.pid == worker.pid
    worker.send(p.Ping(nonce=41))
    assert worker.wait_for(p.Pong, 30).nonce == 41
    beats = [worker.wait_for(p.Heartbeat, 10), worker.wait_for(p.Heartbeat, 10)]
    assert beats[1].seq == beats[0].seq + 1 and 0.5 < beats[1].time - beats[0].time < 3
    assert not beats[0].busy
    worker.send(p.Stop())  # nothing running: ignored, the worker carries on
    worker.send(p.Ping(nonce=42))
    assert worker.wait_for(p.Pong, 30).nonce == 42
    assert worker.shutdown(timeout=60) == 0
    exited = worker.wait_for(WorkerExited, 10)
    assert exited.expected and exited.returncode == 0
    assert not _alive(first.pid)


def test_a_bad_line_is_reported_and_the_worker_keeps_going(worker):
    worker.wait_for(p.Starting, 30)
    stdin = worker._proc.stdin  # a raw write, as a corrupted pipe would deliver it
    stdin.write(b'{"v":1,"type":"pause"\n{"v":1,"type":"launch_rockets"}\n')
    stdin.flush()
    errors = [worker.wait_for(p.WorkerError, 30), worker.wait_for(p.WorkerError, 30)]
    assert "not JSON" in errors[0].error and "unknown command type `launch_rockets`" in errors[1].error
    worker.send(p.Ping(nonce=1))
    assert worker.wait_for(p.Pong, 30).nonce == 1


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_job_errors_come_back_as_failed_with_a_hint(worker, tmp_path):
    worker.send(TrainRequest(config_toml="[schedule\nmax_steps = 3", project_file=str(tmp_path / "project.toml")))
    failed = worker.wait_for(ev.Failed, 120)
    assert "not valid TOML" in failed.error
    worker.send(TrainRequest(config_toml="[model]\npath = 'nowhere'\n", project_file=str(tmp_path / "project.toml")))
    failed = worker.wait_for(ev.Failed, 180)
    # every problem at once, as the CLI and the form list them (studio.validate)
    assert failed.error.splitlines() == ["add a folder of training images",
                                         f"base model not found: {tmp_path / 'nowhere'}"]
    assert failed.hint
    worker.send(p.Ping(nonce=5))  # still alive and idle after three failures
    assert worker.wait_for(p.Pong, 30).nonce == 5


def test_sigkill_is_reported_as_unexpected(worker):
    worker.wait_for(p.Starting, 30)
    os.kill(worker.pid, 9)
    exited = worker.wait_for(WorkerExited, 10)
    assert exited.returncode == -9 and not exited.expected
    assert "SIGKILL" in exited.describe()
    assert worker.send(p.Ping()) is False


def test_worker_exits_when_the_window_goes_away(worker):
    """End of stdin (the window was killed) makes the worker stop and exit: no orphan process."""
    worker.wait_for(p.Starting, 30)
    pid = worker.pid
    worker._proc.stdin.close()
    deadline = time.monotonic() + 60
    while _alive(pid) and worker._proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker._proc.poll() == 0


# --------------------------------------------------------------------------------------------------
# In-process: the Worker class on a pair of pipes, with test jobs registered in this interpreter


@dataclass(frozen=True, kw_only=True)
class OomRequest(JobRequest):  # a JobRequest known only to this test's worker
    type: ClassVar[str] = "test_oom"
    title: ClassVar[str] = "out-of-memory test"


@dataclass(frozen=True, kw_only=True)
class QuietRequest(JobRequest):
    type: ClassVar[str] = "test_quiet"
    title: ClassVar[str] = "quiet test"


def oom_job(request, control):
    yield ev.Log(level="info", text="allocating")
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def quiet_job(request, control):
    """Ends without a Finished event; the worker adds one."""
    while not control.stop_requested:
        if control.take_save():
            yield ev.Log(level="info", text="saved")
        time.sleep(0.01)


class _InProcess:
    def __init__(self) -> None:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        self.to_worker = os.fdopen(w1, "wb")
        self.from_worker = p.LineReader(os.fdopen(r2, "rb"), p.decode_event)
        self.worker = Worker(os.fdopen(r1, "rb"), os.fdopen(w2, "wb"), heartbeat_s=0.05, warm_up=False)
        self.code: list[int] = []
        self.thread = threading.Thread(target=lambda: self.code.append(self.worker.serve()), daemon=True)
        self.thread.start()
        self.writer = p.LineWriter(self.to_worker)

    def next(self, cls, timeout=10.0, where=lambda m: True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.from_worker.read()
            if isinstance(message, cls) and where(message):
                return message
        raise TimeoutError(cls)


@pytest.fixture
def inproc(monkeypatch):
    for cls, target in ((OomRequest, "oom_job"), (QuietRequest, "quiet_job")):
        monkeypatch.setitem(jobs.JOBS, cls, f"{__name__}:{target}")
        monkeypatch.setitem(p.COMMAND_TYPES, cls.type, cls)
    w = _InProcess()
    yield w
    w.to_worker.close()
    w.thread.join(10)


def test_gpu_out_of_memory_becomes_failed_with_the_oom_hint(inproc):
    inproc.writer.write(OomRequest(request_id=31))
    started = inproc.next(p.JobStarted)
    assert (started.kind, started.request_id) == ("test_oom", 31)
    failed = inproc.next(ev.Failed)
    assert "out of GPU memory" in failed.error and failed.hint == GPU_OOM_HINT
    assert "Traceback" in failed.traceback
    ended = inproc.next(p.JobEnded)
    assert (ended.job_id, ended.request_id) == (started.job_id, 31)


def test_commands_reach_the_running_job_and_a_second_start_is_refused(inproc):
    inproc.writer.write(QuietRequest(request_id=1))
    assert inproc.next(p.Heartbeat, where=lambda m: m.busy).job == "test_quiet"
    inproc.writer.write(QuietRequest(request_id=2))
    refused = inproc.next(p.WorkerError)
    assert "a quiet test job is already running" in refused.error and refused.request_id == 2
    inproc.writer.write(p.SaveNow())
    assert inproc.next(ev.Log).text == "saved"
    inproc.writer.write(p.Stop())
    finished = inproc.next(ev.Finished)
    assert finished.stopped
    inproc.writer.write(p.Shutdown())
    inproc.thread.join(10)
    assert inproc.code == [0]


def test_shutdown_stops_a_running_job_first(inproc):
    inproc.writer.write(QuietRequest())
    inproc.next(p.Heartbeat, where=lambda m: m.busy)
    inproc.writer.write(p.Shutdown())
    assert inproc.next(ev.Finished).stopped
    inproc.thread.join(10)
    assert inproc.code == [0]
