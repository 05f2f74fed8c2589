"""The mixer's worker backend knows its jobs by request id: another job's failure is not its own, a refusal
of its request is, and its job ends at the `job_ended` carrying its id."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QObject, Signal  # noqa: E402

from studio.events import Failed, Finished, JobProgress  # noqa: E402
from studio.job_requests import MixPreviewRequest  # noqa: E402
from studio.mix.messages import MixResult  # noqa: E402
from studio.mix.request import RenderRequest  # noqa: E402
from studio.worker import protocol as p  # noqa: E402


class FakeClient(QObject):
    message_received = Signal(object)
    state_changed = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.state, self.running, self.sent = "ready", True, []

    def send(self, command) -> bool:
        self.sent.append(command)
        return True

    def start(self) -> None:
        raise AssertionError("the worker is ready: nothing to start")


def _backend(qtbot):
    from ui.mixer_backend import WorkerPreviewBackend

    client = FakeClient()
    backend = WorkerPreviewBackend(client)
    seen: dict[str, list] = {"result": [], "failed": [], "progress": [], "busy": []}
    backend.result.connect(seen["result"].append)
    backend.failed.connect(lambda *a: seen["failed"].append(a))
    backend.progress.connect(seen["progress"].append)
    backend.busy_changed.connect(seen["busy"].append)
    return client, backend, seen


def _preview() -> MixPreviewRequest:
    return MixPreviewRequest(base="/m", out="/o.png", request=RenderRequest(prompt="x"))


def test_the_request_is_stamped_with_its_id_and_only_its_own_events_count(qtbot):
    client, backend, seen = _backend(qtbot)
    rid = backend.submit(_preview())
    (sent,) = client.sent
    assert sent == MixPreviewRequest(base="/m", out="/o.png", request=RenderRequest(prompt="x"), request_id=rid)
    assert rid > 0 and backend.busy
    # a training job that was already running fails and ends: not the mixer's
    for message in (p.JobStarted(job_id=1, kind="start"), Failed(error="training broke"),
                    p.JobEnded(job_id=1, kind="start")):
        client.message_received.emit(message)
    assert backend.busy and seen["failed"] == []
    client.message_received.emit(p.JobStarted(job_id=2, kind="mix_preview", request_id=rid))
    client.message_received.emit(JobProgress(request_id=rid, done=1, total=2, unit="steps"))
    client.message_received.emit(JobProgress(request_id=rid + 100, done=1, total=9, unit="steps"))
    client.message_received.emit(MixResult(kind="preview", request_id=rid, path="/o.png"))
    client.message_received.emit(Finished(outputs=("/o.png",)))
    assert backend.busy  # the job is over only at its job_ended
    client.message_received.emit(p.JobEnded(job_id=2, kind="mix_preview", request_id=rid))
    assert not backend.busy and seen["busy"] == [True, False]
    assert [m.path for m in seen["result"]] == ["/o.png"] and [m.total for m in seen["progress"]] == [2]


def test_a_refusal_of_its_request_fails_it_whatever_the_text_says(qtbot):
    client, backend, seen = _backend(qtbot)
    rid = backend.submit(_preview())
    client.message_received.emit(p.WorkerError(error="some other job's problem", request_id=rid + 1))
    assert backend.busy and seen["failed"] == []
    client.message_received.emit(p.WorkerError(error="a training job is busy", request_id=rid))
    assert not backend.busy
    assert seen["failed"] == [(rid, "the worker is busy with another job (training?)",
                               "the preview runs once it is free")]


def test_its_own_failure_ends_it(qtbot):
    client, backend, seen = _backend(qtbot)
    rid = backend.submit(_preview())
    client.message_received.emit(p.JobStarted(job_id=5, kind="mix_preview", request_id=rid))
    client.message_received.emit(Failed(error="base model not found", hint="choose another"))
    assert not backend.busy and seen["failed"] == [(rid, "base model not found", "choose another")]
    client.message_received.emit(p.JobEnded(job_id=5, kind="mix_preview", request_id=rid))
    assert seen["busy"] == [True, False]
