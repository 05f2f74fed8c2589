"""The welcome screen's demo project is a job of the window's JobManager (no second request/state machine):
it is built by the worker, waits behind a running training as a queued job, and its result or its failure
comes back to the dialog once."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from studio.events import Failed, Finished  # noqa: E402
from studio.hardware import Hardware  # noqa: E402
from studio.job_requests import DemoProjectRequest, TrainRequest  # noqa: E402
from studio.paths import DATA_ENV, demo_project_dir  # noqa: E402
from studio.worker import protocol as p  # noqa: E402
from tests.jobs_helpers import ScriptedWorker  # noqa: E402
from ui.settings import AppSettings  # noqa: E402

CPU = Hardware((), None, "Test CPU", 4)


@pytest.fixture
def welcome(qtbot, tmp_path, monkeypatch):
    from ui.dialogs.welcome import WelcomeDialog
    from ui.jobs import JobManager

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    worker = ScriptedWorker()
    jobs = JobManager(worker)
    dialog = WelcomeDialog(AppSettings(), hardware=CPU, jobs=jobs)
    qtbot.addWidget(dialog)
    return dialog, jobs, worker


def _bracket(worker: ScriptedWorker, rid: int, kind: str, *events) -> None:
    worker.say(p.JobStarted(job_id=rid, kind=kind, request_id=rid), *events,
               p.JobEnded(job_id=rid, kind=kind, request_id=rid))


def test_the_demo_queues_behind_training_then_opens(welcome, tmp_path):
    dialog, jobs, worker = welcome
    training = jobs.submit(TrainRequest(config_toml=""), "training")
    worker.say(p.JobStarted(job_id=training.id, kind="start", request_id=training.id))
    dialog.demo_button.click()
    (demo,) = jobs.queued()
    assert demo.kind == "demo_project" and demo.detail == "queued: runs after the training job"
    assert [type(c) for c in worker.sent] == [TrainRequest] and not dialog.demo_button.isEnabled()
    assert dialog.status.text() == "Preparing the demo project (queued: runs after the training job)…"

    worker.say(Finished(outputs=()), p.JobEnded(job_id=training.id, kind="start", request_id=training.id))
    request = worker.sent[-1]
    assert isinstance(request, DemoProjectRequest) and request.request_id == demo.id
    assert request.folder == str(demo_project_dir())
    project = tmp_path / "data" / "demo" / "project.toml"
    _bracket(worker, demo.id, "demo_project", Finished(outputs=(str(project),)))
    assert demo.state == "done" and dialog.choice is not None
    assert (dialog.choice.kind, dialog.choice.project_file) == ("demo", project)


def test_a_failed_demo_is_said_and_the_buttons_come_back(welcome):
    dialog, jobs, worker = welcome
    dialog.demo_button.click()
    (job,) = [j for j in jobs.jobs() if j.kind == "demo_project"]
    _bracket(worker, job.id, "demo_project", Failed(error="the demo photos are missing", hint="reinstall"))
    assert job.state == "failed" and dialog.choice is None and dialog.demo_button.isEnabled()
    assert dialog.status.text() == "Could not prepare the demo project: the demo photos are missing\nreinstall"


def test_without_a_job_queue_the_demo_button_explains(qtbot):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(), hardware=CPU)
    qtbot.addWidget(dialog)
    dialog.demo_button.click()
    assert "the app's worker is not available" in dialog.status.text() and dialog.demo_button.isEnabled()
