"""The worker process without Qt: lifecycle, heartbeats, bad input, failures with hints, no orphans."""

from __future__ import annotations

import os
import threading
import time

import pytest

from studio import events as ev
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
    worker.send(p.Start(config_toml="[schedule\nmax_steps = 3", project_file=str(tmp_path / "project.toml")))
    failed = worker.wait_for(ev.Failed, 120)
    assert "not valid TOML" in failed.error
    worker.send(p.Start(config_toml="[model]\npath = 'nowhere'\n", project_file=str(tmp_path / "project.toml")))
    failed = worker.wait_for(ev.Failed, 180)
    assert "no dataset folder" in failed.error and failed.hint
    worker.send(p.RunJob(kind="no-such-job"))
    failed = worker.wait_for(ev.Failed, 180)
    assert "unknown job `no-such-job`" in failed.error
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


def oom_job(params, control):
    yield ev.Log(level="info", text="allocating")
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def quiet_job(params, control):
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
    monkeypatch.setitem(jobs.JOBS, "oom", f"{__name__}:oom_job")
    monkeypatch.setitem(jobs.JOBS, "quiet", f"{__name__}:quiet_job")
    w = _InProcess()
    yield w
    w.to_worker.close()
    w.thread.join(10)


def test_gpu_out_of_memory_becomes_failed_with_the_oom_hint(inproc):
    inproc.writer.write(p.RunJob(kind="oom"))
    started = inproc.next(p.JobStarted)
    assert started.kind == "oom"
    failed = inproc.next(ev.Failed)
    assert "out of GPU memory" in failed.error and failed.hint == GPU_OOM_HINT
    assert "Traceback" in failed.traceback
    assert inproc.next(p.JobEnded).job_id == started.job_id


def test_commands_reach_the_running_job_and_a_second_start_is_refused(inproc):
    inproc.writer.write(p.RunJob(kind="quiet"))
    assert inproc.next(p.Heartbeat, where=lambda m: m.busy).job == "quiet"
    inproc.writer.write(p.RunJob(kind="quiet"))
    assert "already running" in inproc.next(p.WorkerError).error
    inproc.writer.write(p.SaveNow())
    assert inproc.next(ev.Log).text == "saved"
    inproc.writer.write(p.Stop())
    finished = inproc.next(ev.Finished)
    assert finished.stopped
    inproc.writer.write(p.Shutdown())
    inproc.thread.join(10)
    assert inproc.code == [0]


def test_shutdown_stops_a_running_job_first(inproc):
    inproc.writer.write(p.RunJob(kind="quiet"))
    inproc.next(p.Heartbeat, where=lambda m: m.busy)
    inproc.writer.write(p.Shutdown())
    assert inproc.next(ev.Finished).stopped
    inproc.thread.join(10)
    assert inproc.code == [0]
