"""The window's training queue: the Queue tab and its runner against a scripted worker (pytest-qt, fast).

Three entries run one after another unattended, each as a TrainRequest through the real JobManager; the
worker killed during the second leaves the first done with its export, marks the second failed and
resumable, and goes on with the third on a new worker; "Queue again" then resumes the second from its
checkpoint. The buttons reorder and remove entries in the same file `lora-studio queue` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from studio.config import ProjectConfig, dumps_project  # noqa: E402
from studio.events import Finished, Started  # noqa: E402
from studio.job_requests import TrainRequest  # noqa: E402
from studio.train_queue import TrainQueue  # noqa: E402
from studio.worker import protocol as p  # noqa: E402
from studio.worker.client import WorkerExited  # noqa: E402
from tests.jobs_helpers import ScriptedWorker  # noqa: E402
from tests.test_train_queue import _project  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def setup(qtbot, tmp_path):
    from ui.jobs import JobManager
    from ui.widgets.train_queue_view import TrainQueueView

    queue = TrainQueue(tmp_path / "queue.json")
    queue.add([_project(tmp_path / n, n) for n in ("alpha", "beta", "gamma")])
    worker = ScriptedWorker()
    jobs = JobManager(worker, stop_grace_s=0.2)
    view = TrainQueueView(queue)
    qtbot.addWidget(view)
    view.use_jobs(jobs)
    return view, worker, queue


def _rows(view) -> list[str]:
    return [view.list.item(i).text() for i in range(view.list.count())]


def _select(view, entry_id: int) -> None:
    view.list.setCurrentRow([e.id for e in view.entries].index(entry_id))


def _train(worker: ScriptedWorker, request: TrainRequest, export: Path, *, step: int = 4) -> None:
    """The worker's side of one whole run: started, its export written, finished."""
    worker.say(p.JobStarted(job_id=request.request_id, kind="start", request_id=request.request_id),
               Started(run_dir=request.run_dir, total_steps=step))
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_bytes(b"lora " + export.name.encode())
    worker.say(Finished(outputs=(str(export),), step=step),
               p.JobEnded(job_id=request.request_id, kind="start", request_id=request.request_id))


def _checkpoint(run_dir: Path, step: int) -> Path:
    point = run_dir / "checkpoints" / f"checkpoint-{step:07d}"
    point.mkdir(parents=True)
    (point / "state.json").write_text("{}", encoding="utf-8")
    (run_dir / "config.toml").write_text(dumps_project(ProjectConfig().with_section("output", name="beta")),
                                         encoding="utf-8")
    return point


def test_three_entries_run_unattended_and_a_killed_worker_leaves_the_second_resumable(qtbot, tmp_path, setup):
    view, worker, queue = setup
    assert view.run_button.text() == "Run queue" and view.run_button.isEnabled()
    view.run_button.click()
    assert view.run_button.text() == "Stop queue"
    assert TrainQueue(queue.path).runner_active()  # a `lora-studio queue run` of this file is refused now
    first = worker.sent[-1]
    assert isinstance(first, TrainRequest) and first.project_file == queue.get(1).project
    assert first.run_dir == queue.get(1).run_dir and Path(first.run_dir).parent == tmp_path / "alpha" / "runs"
    assert "[running]" in _rows(view)[0]
    assert [j.title for j in view.jobs.jobs()] == ["queue #1 alpha"]  # the Jobs dock's line

    export1 = tmp_path / "out" / "alpha.safetensors"
    _train(worker, first, export1)
    qtbot.waitUntil(lambda: len(worker.sent) == 2)
    assert queue.get(1).state == "done" and queue.get(1).export == str(export1)
    assert _rows(view)[0].endswith(f"[done] {queue.get(1).project} → {export1}")
    second = worker.sent[-1]
    assert second.run_dir == queue.get(2).run_dir and second.resume_from is None

    worker.say(p.JobStarted(job_id=2, kind="start", request_id=second.request_id),
               Started(run_dir=second.run_dir, total_steps=4))
    point = _checkpoint(Path(second.run_dir), 2)
    worker.running = False  # killed during the second
    worker.set_state("dead")
    worker.say(WorkerExited(returncode=-9, expected=False))
    entry = queue.get(2)
    assert entry.state == "failed" and entry.error.startswith("the worker stopped: it was killed")
    assert "[failed, resumable from step 2]" in _rows(view)[1]
    assert export1.read_bytes() == b"lora alpha.safetensors" and queue.get(1).state == "done"

    qtbot.waitUntil(lambda: worker.starts == 1)  # unattended: a new worker for the third
    worker.set_state("ready")
    third = worker.sent[-1]
    assert third.run_dir == queue.get(3).run_dir and len(worker.sent) == 3
    _train(worker, third, tmp_path / "out" / "gamma.safetensors")
    qtbot.waitUntil(lambda: view.run_button.text() == "Run queue")
    assert [e.state for e in queue.entries()] == ["done", "failed", "done"]
    assert not TrainQueue(queue.path).runner_active()
    assert not view.run_button.isEnabled()  # nothing queued

    _select(view, 2)
    assert view.retry_button.isEnabled()
    view.retry_button.click()
    assert queue.get(2).state == "queued" and "[queued]" in _rows(view)[1]
    view.run_button.click()
    resumed = worker.sent[-1]
    assert (resumed.resume_from, resumed.run_dir) == (str(point), second.run_dir)
    _train(worker, resumed, tmp_path / "out" / "beta.safetensors")
    qtbot.waitUntil(lambda: view.run_button.text() == "Run queue")
    assert [e.state for e in queue.entries()] == ["done", "done", "done"]
    assert len(worker.sent) == 4
    view.clear_button.click()
    assert queue.entries() == [] and view.list.count() == 0


def test_stop_queue_stops_the_entry_training_now_and_leaves_the_rest_queued(qtbot, setup):
    view, worker, queue = setup
    view.run_button.click()
    request = worker.sent[-1]
    worker.say(p.JobStarted(job_id=1, kind="start", request_id=request.request_id))
    view.run_button.click()
    assert isinstance(worker.sent[-1], p.Stop)
    worker.say(Finished(outputs=(), step=2, stopped=True),
               p.JobEnded(job_id=1, kind="start", request_id=request.request_id))
    qtbot.waitUntil(lambda: view.run_button.text() == "Run queue")
    assert [e.state for e in queue.entries()] == ["stopped", "queued", "queued"]
    assert len(worker.sent) == 2  # nothing else was sent


def test_up_down_and_remove_change_the_file_and_a_running_entry_cannot_be_removed(setup):
    view, worker, queue = setup
    _select(view, 3)
    assert not view.down_button.isEnabled()
    view.up_button.click()
    assert [e.id for e in queue.entries()] == [1, 3, 2]
    assert view.entries[1].id == 3 and view.list.currentRow() == 1  # the selection follows the entry
    view.up_button.click()
    assert [e.id for e in queue.entries()] == [3, 1, 2] and not view.up_button.isEnabled()
    view.down_button.click()
    assert [e.id for e in queue.entries()] == [1, 3, 2]
    _select(view, 1)
    view.remove_button.click()
    assert [e.id for e in queue.entries()] == [3, 2]
    view.run_button.click()  # entry 3 is first now
    assert worker.sent[-1].run_dir == queue.get(3).run_dir
    _select(view, 3)
    assert not view.remove_button.isEnabled() and not view.retry_button.isEnabled()


def test_a_damaged_queue_file_is_shown_and_left_as_it_is(qtbot, setup):
    view, _worker, queue = setup
    queue.path.write_bytes(b"{not json")
    view.refresh()
    assert view.list.count() == 0 and not view.run_button.isEnabled()
    assert view.status.text().startswith(f"the training queue {queue.path} is damaged: not JSON")
    view.run_button.setEnabled(True)
    view.run_button.click()  # refused with the message; nothing written
    assert queue.path.read_bytes() == b"{not json"


def test_add_to_queue_in_the_train_panel_queues_the_forms_settings(qtbot, tmp_path, monkeypatch):
    from ui.panels.train_panel import TrainPanel

    monkeypatch.setenv("LORA_STUDIO_DATA_DIR", str(tmp_path / "data"))
    panel = TrainPanel()
    qtbot.addWidget(panel)
    panel.queue_button.click()  # no project file yet
    assert panel.banner.isVisibleTo(panel) and "Save the project" in panel.banner.title.text()
    project = _project(tmp_path / "proj", "delta")
    panel.set_project(ProjectConfig().with_section("output", name="delta"), project)
    panel.queue_button.click()
    entry, = TrainQueue(tmp_path / "data" / "queue.json").entries()
    assert entry.project == str(project) and entry.label == "delta" and 'name = "delta"' in entry.config_toml
    assert panel.tabs.currentWidget() is panel.queue_view and panel.queue_view.list.count() == 1
