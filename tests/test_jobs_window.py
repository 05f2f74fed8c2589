"""Issue 18, problems 1 and 2, in the window with the real worker: a preview asked for during training is
queued and renders after it; Cancel ends a render within 2 s; a worker killed mid-preview leaves the mixer
usable; quitting always works, within 5 s, and starts no worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from tests.train_gui_helpers import alive, close_window, open_window, write_project  # noqa: E402

pytestmark = pytest.mark.gui
SLOW_MS = 180_000


@pytest.fixture(scope="module")
def lora(tmp_path_factory) -> Path:
    from studio.models.tiny import build_tiny_pipeline
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    pipe = build_tiny_pipeline("sd1")
    return write_kohya(random_lora(pipe, "sd1", rank=4, alpha=2.0, seed=3, scale=0.35,
                                   metadata=lora_metadata("sd1", "character")),
                       tmp_path_factory.mktemp("jobs-lora") / "character.safetensors")


def _small_preview(mixer, base: Path, lora: Path) -> None:
    mixer.size.setCurrentText("64×64")
    mixer.steps.setValue(2)
    mixer.set_base_model(base)
    mixer.add_lora(lora)


def _running_in_worker(window, job) -> bool:
    """The job has reached the worker and its events are flowing (its job_started has arrived)."""
    return window.jobs.running is job and window.jobs._opened


def _count_starts(window) -> list[int]:
    starts: list[int] = []
    original = window.worker.start
    window.worker.start = lambda: starts.append(1) or original()
    return starts


def test_quit_asks_once_and_a_cancelled_quit_leaves_the_next_one_working(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    starts = _count_starts(window)
    answers = [False, True]  # "Cancel", then "Discard"
    asked: list[bool] = []
    window.confirm_discard_changes = lambda: asked.append(True) or answers.pop(0)
    try:
        window._mark_dirty()
        window.close()
        assert window.isVisible() and asked == [True] and not window._closing
        window.close()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
        assert asked == [True, True] and starts == []
        late = window.jobs.submit(_any_preview(), "mixer preview")
        assert late.state == "cancelled" and starts == []  # nothing starts a worker after quitting
    finally:
        close_window(window)


def _any_preview():
    from studio.job_requests import MixPreviewRequest
    from studio.mix.request import RenderRequest

    return MixPreviewRequest(base="/m", out="/tmp/x.png", request=RenderRequest(prompt="x"))


@pytest.mark.slow
def test_a_preview_asked_for_during_training_is_queued_and_renders_after_it(qtbot, tmp_path, tiny_sd1, lora):
    project = write_project(tmp_path, tiny_sd1)
    window = open_window(qtbot, tmp_path, project)
    panel, mixer = window.train_panel, window.mixer_panel
    try:
        qtbot.waitUntil(lambda: window.worker.state == "ready", timeout=SLOW_MS)
        panel.controls.start_button.click()
        qtbot.waitUntil(lambda: panel.run_state == "running", timeout=SLOW_MS)
        _small_preview(mixer, tiny_sd1, lora)
        qtbot.waitUntil(lambda: mixer._preview_job is not None, timeout=5000)
        job = mixer._preview_job
        assert job.state == "queued" and mixer.preview.caption.text() == "queued: runs after the training job"
        assert not mixer.preview.bar.isHidden() and mixer.preview.bar.format() == "queued"
        assert not mixer.preview.cancel_button.isHidden()
        assert mixer.preview.image.text() == "The preview is queued"  # not "Add a LoRA to see a preview"
        assert mixer.status.text() == "" and mixer.export.export_button.isEnabled()
        worker_jobs = [j for j in window.jobs.jobs() if j.kind != "check"]  # the dataset's image check runs beside
        assert [(j.title, j.state) for j in worker_jobs] == [("training", "running"), ("mixer preview", "queued")]
        assert [r.job.title for r in window.jobs_view.rows if r.job.kind != "check"] == ["training", "mixer preview"]
        with qtbot.waitSignal(mixer.preview_shown, timeout=SLOW_MS):
            panel.stop()
        assert panel.run_state == "idle" and job.state == "done"
        training = next(j for j in window.jobs.jobs() if j.title == "training")
        assert training.state == "cancelled" and training.started_at < job.started_at
        assert mixer.preview.bar.isHidden() and "Failed" not in mixer.preview.caption.text()
    finally:
        close_window(window)


@pytest.mark.slow
@pytest.mark.serial
def test_cancel_ends_a_render_within_2_s_and_a_killed_worker_leaves_the_mixer_usable(qtbot, tmp_path, tiny_sd1,
                                                                                    lora):
    window = open_window(qtbot, tmp_path, None)
    mixer = window.mixer_panel
    try:
        with qtbot.waitSignal(mixer.preview_shown, timeout=SLOW_MS):
            _small_preview(mixer, tiny_sd1, lora)  # loads the base model in the worker
        qtbot.waitUntil(lambda: not mixer.busy, timeout=SLOW_MS)

        mixer.size.setCurrentText("128×128")
        mixer.steps.setValue(150)  # long enough to be cancelled mid-way
        qtbot.waitUntil(lambda: mixer._preview_job is not None and _running_in_worker(window, mixer._preview_job),
                        timeout=SLOW_MS)
        job = mixer._preview_job
        qtbot.wait(500)
        assert job.state == "running" and not mixer.preview.cancel_button.isHidden()
        t0 = time.monotonic()
        mixer.preview.cancel_button.click()
        qtbot.waitUntil(lambda: not job.active, timeout=5000)
        assert time.monotonic() - t0 < 2.0 and job.state == "cancelled"
        assert mixer.preview.caption.text() == "cancelled" and mixer.preview.cancel_button.isHidden()
        assert mixer.grid.render_button.isEnabled() and mixer.export.export_button.isEnabled()

        mixer.seed.setValue(2)  # another long render; the worker is killed under it
        qtbot.waitUntil(lambda: mixer._preview_job is not job and _running_in_worker(window, mixer._preview_job),
                        timeout=SLOW_MS)
        doomed, pid = mixer._preview_job, window.worker.pid
        qtbot.wait(300)
        os.kill(pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: doomed.state == "failed", timeout=10_000)
        assert mixer.preview.caption.text().startswith("Failed: the worker stopped: it was killed by SIGKILL")
        assert "The mixer preview failed: the worker stopped" in mixer.status.text()
        assert mixer.grid.render_button.isEnabled() and mixer.export.export_button.isEnabled()
        assert not mixer.busy and mixer.preview.bar.isHidden()

        # the window restarts the worker; the next preview renders and the red message goes
        with qtbot.waitSignal(mixer.preview_shown, timeout=SLOW_MS):
            mixer.size.setCurrentText("64×64")
            mixer.steps.setValue(2)
        assert window.worker.pid != pid and not alive(pid)
        assert "failed" not in mixer.status.text() and mixer.preview.caption.text() != "cancelled"
    finally:
        close_window(window)


@pytest.mark.slow
@pytest.mark.serial
def test_quit_during_training_with_a_queued_preview_exits_within_5_s_and_starts_no_worker(qtbot, tmp_path, tiny_sd1,
                                                                                         lora):
    project = write_project(tmp_path, tiny_sd1)
    window = open_window(qtbot, tmp_path, project)
    panel, mixer = window.train_panel, window.mixer_panel
    asked: list[bool] = []
    window.confirm_stop_run = lambda: asked.append(True) or True
    window.confirm_discard_changes = lambda: pytest.fail("a second question on the way out")
    try:
        qtbot.waitUntil(lambda: window.worker.state == "ready", timeout=SLOW_MS)
        panel.controls.start_button.click()
        qtbot.waitUntil(lambda: panel.last_step >= 1, timeout=SLOW_MS)
        _small_preview(mixer, tiny_sd1, lora)
        qtbot.waitUntil(lambda: mixer._preview_job is not None and mixer._preview_job.state == "queued",
                        timeout=5000)
        window._mark_dirty()
        starts, pid = _count_starts(window), window.worker.pid
        t0 = time.monotonic()
        window.close()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=6000)
        assert time.monotonic() - t0 < 5.0 and asked == [True]
        qtbot.waitUntil(lambda: not alive(pid), timeout=2000)
        qtbot.wait(500)  # a worker started on the way out would show here
        assert starts == [] and not window.worker.running
        assert mixer._preview_job.state == "cancelled"
    finally:
        close_window(window)
