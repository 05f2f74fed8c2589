"""Faults seen from the window: a killed worker mid-run (acceptance 2), a hung worker, a failing run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from safetensors import safe_open  # noqa: E402

from studio.events import Progress, Started  # noqa: E402
from tests.train_gui_helpers import alive, close_window, open_window, partial_files, write_project  # noqa: E402

pytestmark = pytest.mark.gui


def _progress(received: list, run_dir: Path | None = None) -> dict[int, float]:
    """step → loss of the progress events after the last Started event (of `run_dir`, if given)."""
    out: dict[int, float] = {}
    for m in received:
        if isinstance(m, Started) and (run_dir is None or Path(m.run_dir) == run_dir):
            out = {}
        elif isinstance(m, Progress):
            out[m.step] = m.loss
    return out


@pytest.mark.slow
def test_sigkill_mid_run_is_reported_and_resume_matches_an_uninterrupted_run(qtbot, tmp_path, tiny_sd1):
    project = write_project(tmp_path, tiny_sd1, schedule={"max_steps": 60}, output={"save_every_n_steps": 2})
    window = open_window(qtbot, tmp_path, project)
    panel = window.train_panel
    received: list = []
    killed: list[int] = []

    def kill_mid_run(message) -> None:
        """SIGKILL as soon as step 3 is reported: the checkpoint of step 2 is on disk, step 4 is being computed."""
        received.append(message)
        if isinstance(message, Progress) and message.step >= 3 and not killed:
            killed.append(window.worker.pid)
            os.kill(killed[0], signal.SIGKILL)

    window.worker.message_received.connect(kill_mid_run)
    try:
        panel.controls.start_button.click()
        qtbot.waitUntil(lambda: bool(killed), timeout=120_000)
        qtbot.waitUntil(lambda: panel.run_state == "idle", timeout=10_000)
        qtbot.waitUntil(lambda: "Resume from step" in panel.banner.action.text(), timeout=10_000)
        assert "killed by SIGKILL" in panel.banner.text()
        assert not alive(killed[0])
        run_dir = panel.run_dir
        resume_step = panel.checkpoint_step
        assert resume_step >= 2 and resume_step % 2 == 0
        assert panel.banner.action.text() == f"Resume from step {resume_step}"
        uninterrupted = _progress(received)  # the killed run ran uninterrupted from step 0
        # nothing half-written among the outputs: no temporaries, every LoRA and checkpoint file complete
        assert partial_files(run_dir, tmp_path / "out") == []
        for path in [*run_dir.rglob("*.safetensors"), *(tmp_path / "out").glob("*.safetensors")]:
            with safe_open(str(path), "pt") as fh:
                assert list(fh.keys())
        # the window restarted a worker by itself
        qtbot.waitUntil(lambda: window.worker.state == "ready" and window.worker.pid != killed[0], timeout=60_000)

        received.clear()
        panel.banner.action.click()  # "Resume from step N"
        qtbot.waitUntil(lambda: any(isinstance(m, Progress) for m in received), timeout=120_000)
        started = next(m for m in received if isinstance(m, Started))
        assert Path(started.run_dir) == run_dir and started.start_step == resume_step
        first = next(m for m in received if isinstance(m, Progress))
        assert first.step == resume_step + 1
        panel.controls.stop_button.click()
        qtbot.waitUntil(lambda: panel.run_state == "idle", timeout=60_000)

        if resume_step + 1 not in uninterrupted:  # a slow machine saved the next checkpoint before the kill
            received.clear()
            panel.controls.start_button.click()  # the same settings, uninterrupted, in a new run
            qtbot.waitUntil(lambda: resume_step + 1 in _progress(received), timeout=120_000)
            uninterrupted = _progress(received)
            panel.controls.stop_button.click()
            qtbot.waitUntil(lambda: panel.run_state == "idle", timeout=60_000)
        assert first.loss == uninterrupted[resume_step + 1]
    finally:
        close_window(window)


@pytest.mark.slow
def test_a_hung_worker_is_reported_within_seconds_and_can_be_replaced(qtbot, tmp_path):
    from ui.worker_client import WorkerClient

    worker = WorkerClient(heartbeat_timeout_s=2.0)
    window = open_window(qtbot, tmp_path, None, worker=worker)
    panel = window.train_panel
    try:
        qtbot.waitUntil(lambda: worker.state in ("starting", "ready") and worker.pid is not None, timeout=10_000)
        qtbot.wait(500)
        pid = worker.pid
        os.kill(pid, signal.SIGSTOP)  # alive but silent
        qtbot.waitUntil(lambda: worker.state == "unresponsive", timeout=6_000)
        assert "has not answered" in panel.banner.text() and panel.banner.action.text() == "Restart worker"
        os.kill(pid, signal.SIGCONT)
        qtbot.waitUntil(lambda: worker.state in ("starting", "ready"), timeout=6_000)
        assert not panel.banner.isVisible()

        os.kill(pid, signal.SIGSTOP)
        qtbot.waitUntil(lambda: worker.state == "unresponsive", timeout=6_000)
        panel.banner.action.click()  # Restart worker
        qtbot.waitUntil(lambda: worker.pid not in (None, pid) and worker.state in ("starting", "ready"),
                        timeout=10_000)
        qtbot.waitUntil(lambda: not alive(pid), timeout=10_000)
    finally:
        close_window(window)


@pytest.mark.slow
def test_a_failing_run_says_why_and_the_app_stays_up(qtbot, tmp_path, tiny_sd1):
    import shutil

    from safetensors.torch import load_file, save_file

    # a model that every check before the start accepts, but whose UNet weights are all NaN: only training
    # in the worker finds out (the loss is not a number)
    model = tmp_path / "nan-model"
    shutil.copytree(tiny_sd1, model)
    weights = next((model / "unet").glob("*.safetensors"))
    save_file({k: v.float().fill_(float("nan")).to(v.dtype) for k, v in load_file(weights).items()}, weights)
    project = write_project(tmp_path, model)
    window = open_window(qtbot, tmp_path, project)
    panel = window.train_panel
    try:
        panel.controls.start_button.click()
        qtbot.waitUntil(lambda: panel.run_state == "idle" and panel.banner.kind == "error", timeout=120_000)
        assert "The run failed" in panel.banner.text()
        assert window.worker.state == "ready"  # the same worker carries on
    finally:
        close_window(window)
