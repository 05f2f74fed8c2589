"""The auto-caption dialog is a job of the window's JobManager: it submits one typed request, waits its turn
behind a running training (shown queued, never an error), follows its own Job (progress bar, captions
written), cancels through the manager, and hands the written captions to the panel."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QSettings  # noqa: E402

from studio.events import CaptionWritten, Failed, Finished, JobProgress  # noqa: E402
from studio.job_requests import AutoCaptionRequest, TrainRequest  # noqa: E402
from studio.worker import protocol as p  # noqa: E402
from studio.worker.client import WorkerExited  # noqa: E402
from tests.jobs_helpers import ScriptedWorker  # noqa: E402


@pytest.fixture
def tagger(tmp_path: Path) -> Path:
    folder = tmp_path / "wd14"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not read by the window")
    return folder


def _dialog(qtbot, tmp_path: Path, tagger: Path, client: ScriptedWorker):
    from ui.dialogs.autocaption_dialog import AutoCaptionDialog
    from ui.jobs import JobManager

    images = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    jobs = JobManager(client)
    dialog = AutoCaptionDialog(images, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                               jobs=jobs, caption_extension=".caption")
    qtbot.addWidget(dialog)
    dialog.model.setText(str(tagger))
    dialog.mode.setCurrentIndex(dialog.mode.findData("append"))
    emitted: list = []
    dialog.captions_ready.connect(lambda results, mode: emitted.append((results, mode)))
    return dialog, images, emitted


def _run(client: ScriptedWorker, rid: int, kind: str, *events) -> None:
    """The worker's brackets around `events` for the job with request id `rid`."""
    client.message_received.emit(p.JobStarted(job_id=rid, kind=kind, request_id=rid))
    for event in events:
        client.message_received.emit(event)
    client.message_received.emit(p.JobEnded(job_id=rid, kind=kind, request_id=rid))


def test_one_typed_request_its_progress_and_the_captions_written(qtbot, tmp_path, tagger):
    client = ScriptedWorker()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    assert dialog.start_button.isEnabled() and "WD14" in dialog.kind.text()
    dialog.start()
    (request,) = client.sent
    assert isinstance(request, AutoCaptionRequest) and request.request_id == dialog.job.id > 0
    assert (request.model, request.images, request.mode, request.caption_extension) == \
        (str(tagger), tuple(str(i) for i in images), "append", ".caption")
    assert dialog.jobs.jobs() == [dialog.job] and dialog.job.title == "auto-caption 3 images"  # in the Jobs dock
    rid = request.request_id
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.text() == "Cancel"
    # another sender's job, before ours has started, changes nothing
    for message in (p.JobStarted(job_id=1, kind="mix_preview", request_id=rid + 1),
                    JobProgress(request_id=rid + 1, done=5, total=9, unit="steps"), Failed(error="preview broke"),
                    p.JobEnded(job_id=1, kind="mix_preview", request_id=rid + 1)):
        client.message_received.emit(message)
    assert dialog.active and dialog.progress.value() == 0 and not emitted
    client.message_received.emit(p.JobStarted(job_id=2, kind="autocaption", request_id=rid))
    assert dialog.status.text() == "Loading the model…"
    client.message_received.emit(JobProgress(request_id=rid, done=0, total=3, unit="images"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[0]), generated="red thing",
                                                caption="sky, red thing", before="sky"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[1]), error="not an image"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[2]), generated="blue thing",
                                                caption=None, before="blue thing"))
    client.message_received.emit(JobProgress(request_id=rid, done=2, total=3, unit="images", eta_s=1.0))
    assert (dialog.progress.maximum(), dialog.progress.value()) == (3, 2)
    assert dialog.job.progress.text() == "2/3 images, ETA 0:01"
    assert "c.png: blue thing" in dialog.status.text()
    client.message_received.emit(Finished(outputs=()))
    client.message_received.emit(p.JobEnded(job_id=2, kind="autocaption", request_id=rid))
    assert not dialog.active and dialog.job.state == "done" and "Done: 2 captions made" in dialog.status.text()
    assert dialog.cancel_button.text() == "Close" and dialog.start_button.isEnabled()
    ((results, mode),) = emitted
    assert mode == "append"
    assert [(r.path, r.caption, r.written) for r in results] == [(images[0], "red thing", True),
                                                                 (images[2], "blue thing", False)]


def test_it_queues_behind_a_running_training_and_runs_after_it(qtbot, tmp_path, tagger):
    client = ScriptedWorker()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    training = dialog.jobs.submit(TrainRequest(config_toml=""), "training")
    client.message_received.emit(p.JobStarted(job_id=training.id, kind="start", request_id=training.id))
    dialog.start()
    assert [type(c) for c in client.sent] == [TrainRequest]  # nothing sent while the training runs
    assert dialog.job.state == "queued" and dialog.status.text() == "Queued: runs after the training job"
    assert "Failed" not in dialog.status.text() and dialog.cancel_button.text() == "Cancel"
    assert [j.state for j in dialog.jobs.jobs()] == ["running", "queued"]
    from ui.jobs.jobs_view import JobsView

    dock = JobsView(dialog.jobs)
    qtbot.addWidget(dock)
    row = dock.row_for(dialog.job)
    assert row.title.text() == "<b>Queued</b> · auto-caption 3 images" and row.bar.format() == "queued"
    assert row.detail.text() == "queued: runs after the training job" and dock.summary() == "Jobs: 1 running, 1 queued"

    dialog.cancel_button.click()  # a queued job is dropped at once; the training goes on
    assert dialog.job.state == "cancelled" and dialog.status.text() == "Cancelled before it started."
    assert dialog.cancel_button.text() == "Close" and dialog.start_button.isEnabled() and training.active
    assert [type(c) for c in client.sent] == [TrainRequest]

    dialog.start()
    client.message_received.emit(Finished(outputs=("lora.safetensors",)))
    client.message_received.emit(p.JobEnded(job_id=training.id, kind="start", request_id=training.id))
    assert training.state == "done" and isinstance(client.sent[-1], AutoCaptionRequest)
    assert client.sent[-1].request_id == dialog.job.id and dialog.job.state == "running"
    _run(client, dialog.job.id, "autocaption",
         CaptionWritten(request_id=dialog.job.id, image=str(images[0]), generated="x", caption="x"),
         Finished(outputs=()))
    assert "Done: 1 captions made" in dialog.status.text() and len(emitted[0][0]) == 1


def test_cancel_stops_the_running_job_and_a_refusal_is_shown(qtbot, tmp_path, tagger):
    client = ScriptedWorker()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    dialog.start()
    rid = dialog.job.id
    client.message_received.emit(p.JobStarted(job_id=3, kind="autocaption", request_id=rid))
    dialog.cancel_button.click()
    assert isinstance(client.sent[-1], p.Stop) and "Stopping" in dialog.status.text()
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[0]), generated="x", caption="x"))
    client.message_received.emit(Finished(outputs=(), stopped=True))
    client.message_received.emit(p.JobEnded(job_id=3, kind="autocaption", request_id=rid))
    assert dialog.job.state == "cancelled"
    assert "Cancelled: 1 captions made" in dialog.status.text() and len(emitted[0][0]) == 1

    dialog.start()  # the worker refuses this request by its id
    client.message_received.emit(p.WorkerError(error="the captioning model could not be loaded",
                                               hint="choose another model folder", request_id=dialog.job.id))
    assert not dialog.active and dialog.job.state == "failed"
    assert dialog.status.text() == ("Failed: the captioning model could not be loaded — choose another model "
                                    "folder")


def test_the_request_waits_for_a_worker_that_is_starting(qtbot, tmp_path, tagger):
    client = ScriptedWorker(state="stopped")
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    dialog.start()
    assert client.starts == 1 and dialog.status.text() == "Queued: waiting for the worker to start"
    assert not client.sent
    client.set_state("ready")
    assert isinstance(client.sent[-1], AutoCaptionRequest) and client.sent[-1].request_id == dialog.job.id


def test_a_worker_that_dies_fails_the_job_and_keeps_what_was_written(qtbot, tmp_path, tagger):
    client = ScriptedWorker()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    dialog.start()
    rid = dialog.job.id
    client.message_received.emit(p.JobStarted(job_id=4, kind="autocaption", request_id=rid))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[0]), generated="x", caption="x"))
    client.message_received.emit(WorkerExited(returncode=-9, expected=False))
    assert dialog.job.state == "failed" and dialog.start_button.isEnabled()
    assert dialog.status.text().startswith("Failed: the worker stopped: it was killed by SIGKILL")
    assert [r.path for r in emitted[0][0]] == [images[0]]  # the sidecar written before it died stays undoable


def test_the_window_dataset_panel_opens_it_on_the_window_job_manager(qtbot, tmp_path, monkeypatch):
    from tests.train_gui_helpers import close_window, open_window
    from ui.dialogs.autocaption_dialog import AutoCaptionDialog

    opened: list = []
    monkeypatch.setattr(AutoCaptionDialog, "exec", lambda self: opened.append(self) or 0)
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    try:
        window.dataset_panel.open_autocaption()
        (dialog,) = opened
        assert dialog.jobs is window.jobs and not dialog._own_jobs  # one queue: it shows in the Jobs dock
    finally:
        close_window(window)
