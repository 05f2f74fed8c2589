"""Helpers for the Train panel and worker GUI tests: a tiny project on disk and a window that cleans up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_images, tiny_config


def write_project(tmp_path: Path, model: Path, *, schedule=None, sampling=None, output=None) -> Path:
    """A project.toml for the tiny model with four 64-px images, relative to `tmp_path`."""
    from studio.config import save_project

    data = make_images(tmp_path / "data", n=4, size=(64, 64))
    cfg = tiny_config(model, data, tmp_path / "out",
                      schedule={"max_steps": 200, **(schedule or {})},
                      sampling={"prompts": (), "steps": 2, **(sampling or {})},
                      output={"save_every_n_steps": 0, "keep_checkpoints": 10, **(output or {})})
    project = tmp_path / "project.toml"
    save_project(cfg, project)
    return project


def open_window(qtbot, tmp_path: Path, project: Path | None, **kwargs):
    from PySide6.QtCore import QSettings

    from ui.main_window import MainWindow

    os.environ["LORA_STUDIO_CACHE_DIR"] = str(tmp_path / "cache")  # the Dataset area's thumbnails
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(project, settings=settings, **kwargs)
    window.show()
    qtbot.waitUntil(lambda: window.project_loaded, timeout=10_000)
    return window


def close_window(window) -> None:
    """Teardown: never leave a worker behind, whatever the test did."""
    worker = window.worker
    if worker.running:
        worker.kill()
        worker.wait_exited(10)
    window._close_ready = True
    window.close()


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def partial_files(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")) or p.name.startswith(".")]
    return found


@pytest.fixture
def idle_window(qtbot, tmp_path):
    """A window with no worker: enough for the form and the checks before start; `window.sent` holds the
    job requests submitted and the control commands the Train panel asked for (nothing starts a worker:
    the jobs stay queued)."""
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    sent: list = []
    window.worker.start = lambda: None
    window.jobs.job_added.connect(lambda job: sent.append(job.request))
    window.train_panel.command_requested.disconnect(window._send)
    window.train_panel.command_requested.connect(sent.append)
    window.sent = sent
    yield window
    close_window(window)
