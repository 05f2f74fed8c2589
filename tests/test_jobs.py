"""The window's job model (issue 18, point 1) against a scripted worker: queue order, reorder, cancel,
matching events to jobs, a worker that dies mid-job, and quitting."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("PySide6")

from studio.events import Failed, Finished, JobProgress, Log, Progress  # noqa: E402
from studio.job_requests import MixPreviewRequest, TrainRequest  # noqa: E402
from studio.mix.messages import MixResult  # noqa: E402
from studio.mix.request import RenderRequest  # noqa: E402
from studio.worker import protocol as p  # noqa: E402
from studio.worker.client import WorkerExited  # noqa: E402
from tests.jobs_helpers import ScriptedWorker  # noqa: E402

pytestmark = pytest.mark.gui


def preview(n: int = 0) -> MixPreviewRequest:
    return MixPreviewRequest(base="/m", out=f"/tmp/p{n}.png", request=RenderRequest(prompt=f"p{n}"))


def train() -> TrainRequest:
    return TrainRequest(config_toml="[schedule]\nmax_steps = 4\n", project_file="/p/project.toml")


@pytest.fixture
def jobs(qtbot):
    from ui.jobs import JobManager

    worker = ScriptedWorker()
    manager = JobManager(worker, stop_grace_s=0.2)
    manager.test_worker = worker
    return manager


def test_one_job_at_a_time_in_order_with_reorder_and_cancel_of_a_queued_one(jobs):
    w = jobs.test_worker
    t = jobs.submit(train(), "training")
    a, b, c = (jobs.submit(preview(i), f"preview {i}") for i in range(3))
    assert [j.state for j in (t, a, b, c)] == ["running", "queued", "queued", "queued"]
    assert w.sent == [replace(train(), request_id=t.id)]
    assert a.detail == "queued: runs after the training job" and b.detail == "queued: runs after the preview 0 job"
    assert jobs.move(c.id, 0) and [j.title for j in jobs.queued()] == ["preview 2", "preview 0", "preview 1"]
    assert not jobs.move(t.id, 2)  # the running job is not in the queue
    removed = []
    jobs.job_removed.connect(removed.append)
    jobs.cancel(a)
    assert a.state == "cancelled" and removed == [a] and jobs.queued() == [c, b]
    assert w.sent == [w.sent[0]]  # nothing sent for a cancelled queued job

    w.say(p.JobStarted(job_id=1, kind="start"), Progress(step=2, total=4, epoch=1, loss=0.1, smoothed_loss=0.1,
                                                          lr=1e-4, it_per_s=2.0, eta_s=1.0))
    assert t.progress.done == 2 and t.progress.total == 4 and t.progress.text() == "2/4 steps, ETA 0:01"
    w.say(Finished(outputs=("/o/x.safetensors",), step=4), p.JobEnded(job_id=1, kind="start"))
    assert t.state == "done" and t.outputs == ("/o/x.safetensors",)
    assert c.state == "running" and len(w.sent) == 2
    assert w.sent[1] == replace(preview(2), request_id=c.id)
    assert [j.title for j in jobs.jobs()] == ["preview 2", "preview 1", "training"]  # the cancelled one is gone


def test_events_and_results_go_to_their_own_job(jobs):
    w = jobs.test_worker
    job = jobs.submit(preview(), "mixer preview")
    seen = []
    job.event.connect(seen.append)
    w.say(Log(level="info", text="before it started"))  # not inside any job's brackets
    w.say(p.JobStarted(job_id=5, kind="mix_preview"), Log(level="info", text="loading"),
          MixResult(kind="preview", request_id=job.id, path="/tmp/p0.png"), Finished(outputs=("/tmp/p0.png",)),
          p.JobEnded(job_id=5, kind="mix_preview"))
    assert [type(m).__name__ for m in seen] == ["Log", "MixResult", "Finished"]
    assert job.state == "done" and [r.path for r in job.results] == ["/tmp/p0.png"]


def test_a_failed_job_says_why_and_the_next_one_runs(jobs):
    w = jobs.test_worker
    first, second = jobs.submit(preview(1)), jobs.submit(preview(2))
    w.say(p.JobStarted(job_id=1, kind="mix_preview"), Failed(error="the base model is missing", hint="choose one"),
          p.JobEnded(job_id=1, kind="mix_preview"))
    assert first.state == "failed" and first.error == "the base model is missing" and first.hint == "choose one"
    assert second.state == "running"


def test_cancel_of_a_running_job_sends_stop_and_says_when_it_is_late(jobs, qtbot):
    w = jobs.test_worker
    job = jobs.submit(preview())
    w.say(p.JobStarted(job_id=1, kind="mix_preview"))
    jobs.cancel(job)
    assert isinstance(w.sent[-1], p.Stop) and job.detail == "stopping…" and job.state == "running"
    qtbot.waitUntil(lambda: "still stopping" in job.detail, timeout=3000)
    w.say(Finished(outputs=(), stopped=True), p.JobEnded(job_id=1, kind="mix_preview"))
    assert job.state == "cancelled"


def test_a_worker_killed_mid_job_fails_it_with_the_reason_and_keeps_the_queue(jobs):
    w = jobs.test_worker
    running, waiting = jobs.submit(train(), "training"), jobs.submit(preview(), "mixer preview")
    w.say(p.JobStarted(job_id=1, kind="start"))
    w.running = False
    w.set_state("dead")
    w.say(WorkerExited(returncode=-9, expected=False))
    assert running.state == "failed"
    assert running.error == ("the worker stopped: it was killed by SIGKILL (the system may have run out of memory) "
                             "(exit -9)")
    assert waiting.state == "queued" and waiting.detail == "queued: waiting for the worker to start"
    assert len(w.sent) == 1  # nothing re-sent
    w.start()
    w.set_state("ready")
    assert waiting.state == "running" and w.sent[-1] == replace(preview(), request_id=waiting.id)


def test_submit_starts_a_stopped_worker_but_never_while_quitting(qtbot):
    from ui.jobs import JobManager

    w = ScriptedWorker("stopped")
    jobs = JobManager(w)
    job = jobs.submit(preview())
    assert w.starts == 1 and job.state == "queued" and job.detail == "queued: waiting for the worker to start"
    jobs.shut_down()
    assert job.state == "cancelled"
    w.running, w.state = False, "stopped"
    late = jobs.submit(preview(2))
    assert late.state == "cancelled" and w.starts == 1
    w.set_state("ready")
    assert w.sent == []


def test_quitting_stops_the_running_job_and_drops_the_queue(jobs):
    w = jobs.test_worker
    running, queued = jobs.submit(train()), jobs.submit(preview())
    jobs.shut_down()
    assert queued.state == "cancelled" and isinstance(w.sent[-1], p.Stop)
    w.say(p.JobStarted(job_id=1, kind="start"), Finished(outputs=(), stopped=True), p.JobEnded(job_id=1, kind="start"))
    assert running.state == "cancelled" and len([c for c in w.sent if not isinstance(c, p.Stop)]) == 1


def test_events_are_matched_by_request_id(jobs):
    """Another sender's job (its job_started carries another request id) is not ours; a refusal naming
    our request fails it even after its job_started."""
    w = jobs.test_worker
    job = jobs.submit(preview())
    w.say(p.JobStarted(job_id=1, kind="mix_preview", request_id=job.id + 50), Failed(error="not ours"),
          p.JobEnded(job_id=1, kind="mix_preview", request_id=job.id + 50))
    assert job.state == "running" and job.error == ""
    w.say(p.JobStarted(job_id=2, kind="mix_preview", request_id=job.id),
          JobProgress(request_id=job.id, done=3, total=20, unit="steps"))
    assert job.progress.done == 3 and job.progress.unit == "steps" and job.progress.eta_s is not None
    w.say(p.WorkerError(error="the worker cannot run this", request_id=job.id))
    assert job.state == "failed" and job.error == "the worker cannot run this"


def _records(folder, n):
    from studio.dataset.scan import scan_folders
    from tests.conftest import make_images

    make_images(folder, n=n, size=(16, 16))
    return list(scan_folders([folder]).images)


def test_an_image_check_is_listed_beside_a_worker_job_and_ends_done(jobs, qtbot, tmp_path):
    from ui.jobs.jobs_view import JobsView
    from ui.models.check_runner import CheckRunner

    t = jobs.submit(train(), "training")
    view = JobsView(jobs)
    qtbot.addWidget(view)
    checker = CheckRunner(tmp_path / "cache")
    checker.jobs = jobs
    checker.start(_records(tmp_path / "imgs", 3), 8)
    check = next(j for j in jobs.jobs() if j.kind == "check")
    assert check.state == "running" and check.title == "image check (3 images)"
    assert view.summary() == "Jobs: 2 running" and t.state == "running"  # not queued behind the training
    with qtbot.waitSignal(checker.finished, timeout=10_000):
        pass
    assert check.state == "done" and check.detail == "0 problem(s) in 3 images"
    assert check not in jobs.queued() and jobs.running is t and jobs.running_count == 1


def test_cancel_of_an_image_check_in_the_jobs_list_stops_it_without_a_result(jobs, qtbot, tmp_path, monkeypatch):
    import threading

    import studio.dataset.check as check_module
    from ui.models.check_runner import CheckRunner

    release = threading.Event()
    real = check_module.check_image

    def slow_check(*args, **kwargs):  # each file waits until the test lets it go
        release.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(check_module, "check_image", slow_check)
    checker = CheckRunner(tmp_path / "cache")
    checker.jobs = jobs
    results = []
    checker.finished.connect(results.append)
    checker.start(_records(tmp_path / "imgs", 4), 8)
    check = next(j for j in jobs.jobs() if j.kind == "check")
    jobs.cancel(check)
    assert check.state == "cancelled" and check.cancel_requested
    release.set()
    qtbot.waitUntil(lambda: not checker.running, timeout=5_000)
    qtbot.wait(50)
    assert results == [] and check.state == "cancelled" and jobs.running_count == 0
