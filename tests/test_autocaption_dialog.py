"""The auto-caption dialog drives a worker job: it sends one typed request, follows only that request's
events (progress bar, captions written), cancels with Stop, and hands the written captions to the panel."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QObject, QSettings, Signal  # noqa: E402

from studio.events import CaptionWritten, Failed, Finished, JobProgress  # noqa: E402
from studio.job_requests import AutoCaptionRequest  # noqa: E402
from studio.worker import protocol as p  # noqa: E402


class FakeClient(QObject):
    message_received = Signal(object)
    state_changed = Signal(str, str)

    def __init__(self, state: str = "ready") -> None:
        super().__init__()
        self.state, self.running, self.sent, self.started = state, state == "ready", [], 0

    def send(self, command) -> bool:
        self.sent.append(command)
        return self.state == "ready"

    def start(self) -> None:
        self.started += 1
        self.running = True


@pytest.fixture
def tagger(tmp_path: Path) -> Path:
    folder = tmp_path / "wd14"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not read by the window")
    return folder


def _dialog(qtbot, tmp_path: Path, tagger: Path, client: FakeClient):
    from ui.dialogs.autocaption_dialog import AutoCaptionDialog

    images = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    dialog = AutoCaptionDialog(images, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                               client=client, caption_extension=".caption")
    qtbot.addWidget(dialog)
    dialog.model.setText(str(tagger))
    dialog.mode.setCurrentIndex(dialog.mode.findData("append"))
    emitted: list = []
    dialog.captions_ready.connect(lambda results, mode: emitted.append((results, mode)))
    return dialog, images, emitted


def test_one_typed_request_its_progress_and_the_captions_written(qtbot, tmp_path, tagger):
    client = FakeClient()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    assert dialog.start_button.isEnabled() and "WD14" in dialog.kind.text()
    dialog.start()
    (request,) = client.sent
    assert isinstance(request, AutoCaptionRequest) and request.request_id == dialog.request_id > 0
    assert (request.model, request.images, request.mode, request.caption_extension) == \
        (str(tagger), tuple(str(i) for i in images), "append", ".caption")
    rid = request.request_id
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.text() == "Cancel"
    # another job's events change nothing
    for message in (p.JobStarted(job_id=1, kind="mix_preview", request_id=rid + 1),
                    JobProgress(request_id=rid + 1, done=5, total=9, unit="steps"), Failed(error="preview broke"),
                    p.JobEnded(job_id=1, kind="mix_preview", request_id=rid + 1)):
        client.message_received.emit(message)
    assert dialog.request_id == rid and dialog.progress.value() == 0 and not emitted
    client.message_received.emit(p.JobStarted(job_id=2, kind="autocaption", request_id=rid))
    client.message_received.emit(JobProgress(request_id=rid, done=0, total=3, unit="images"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[0]), generated="red thing",
                                                caption="sky, red thing", before="sky"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[1]), error="not an image"))
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[2]), generated="blue thing",
                                                caption=None, before="blue thing"))
    client.message_received.emit(JobProgress(request_id=rid, done=2, total=3, unit="images", eta_s=1.0))
    assert (dialog.progress.maximum(), dialog.progress.value()) == (3, 2)
    assert "c.png: blue thing" in dialog.status.text()
    client.message_received.emit(Finished(outputs=()))
    assert dialog.request_id is None and "Done: 2 captions made" in dialog.status.text()
    assert dialog.cancel_button.text() == "Close" and dialog.start_button.isEnabled()
    ((results, mode),) = emitted
    assert mode == "append"
    assert [(r.path, r.caption, r.written) for r in results] == [(images[0], "red thing", True),
                                                                 (images[2], "blue thing", False)]


def test_cancel_sends_stop_and_a_refusal_is_shown(qtbot, tmp_path, tagger):
    client = FakeClient()
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    dialog.start()
    rid = dialog.request_id
    client.message_received.emit(p.JobStarted(job_id=3, kind="autocaption", request_id=rid))
    dialog.cancel_button.click()
    assert isinstance(client.sent[-1], p.Stop) and "Stopping" in dialog.status.text()
    client.message_received.emit(CaptionWritten(request_id=rid, image=str(images[0]), generated="x", caption="x"))
    client.message_received.emit(Finished(outputs=(), stopped=True))
    assert "Cancelled: 1 captions made" in dialog.status.text() and len(emitted[0][0]) == 1

    dialog.start()  # the worker is busy with training: it refuses this request by its id
    client.message_received.emit(p.WorkerError(error="a training job is already running",
                                               hint="stop it first, or wait until it has finished",
                                               request_id=dialog.request_id))
    assert dialog.request_id is None
    assert dialog.status.text() == ("Failed: a training job is already running — stop it first, or wait until it "
                                    "has finished")


def test_the_request_waits_for_a_worker_that_is_starting(qtbot, tmp_path, tagger):
    client = FakeClient(state="stopped")
    dialog, images, emitted = _dialog(qtbot, tmp_path, tagger, client)
    dialog.start()
    assert client.started == 1 and "Waiting for the worker" in dialog.status.text()
    client.state = "ready"
    client.state_changed.emit("ready", "")
    assert isinstance(client.sent[-1], AutoCaptionRequest) and client.sent[-1].request_id == dialog.request_id
