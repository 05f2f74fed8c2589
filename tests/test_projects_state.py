"""Issue 18 points 4 and 9: presets shown and undoable, a project's own runs, resume offered on opening."""

from __future__ import annotations

import json

import pytest

from studio.config import ProjectConfig, load_preset, save_project
from studio.run_folder import CHECKPOINT_STATE, checkpoint_dir
from tests.train_gui_helpers import idle_window  # noqa: F401 - fixture

pytestmark = pytest.mark.gui


def test_applying_a_preset_lists_its_changes_and_undo_restores(idle_window, qtbot):
    panel = idle_window.train_panel
    demo = load_preset("demo")
    panel.form.set_config(demo)
    panel.presets.show_config(demo)
    assert panel.presets.in_effect() == "demo"
    panel.presets.activated.emit(panel.presets.findData("sd15-character"))
    qtbot.waitUntil(lambda: panel.preset_note.isVisible(), timeout=5000)
    text = panel.preset_note.text.text()
    assert text.startswith("sd15-character changed ") and "rank 8 → 32" in text and "alpha 4 → 16" in text
    assert panel.form.config().network.rank == 32
    assert panel.presets.in_effect() == "sd15-character"
    panel.preset_note.undo_button.click()
    assert panel.form.config() == demo
    assert panel.presets.in_effect() == "demo" and not panel.preset_note.isVisible()
    panel.form.editor("network", "rank").set_value(9)
    panel.form.changed.emit()
    qtbot.waitUntil(lambda: panel.presets.currentText() == "custom", timeout=3000)


def _interrupted_run(project_dir, step=120, total=400):
    run = project_dir / "runs" / "20260101-120000-x"
    ckpt = checkpoint_dir(run, 100)
    ckpt.mkdir(parents=True)
    (ckpt / CHECKPOINT_STATE).write_text("{}")
    (run / "config.toml").write_text("")
    events = [{"type": "started", "total_steps": total, "start_step": 0, "run_dir": str(run)}]
    events += [{"type": "progress", "step": s, "total": total, "epoch": 0, "loss": 0.5, "smoothed_loss": 0.4,
                "lr": 1e-4, "it_per_s": 1.0} for s in range(1, step + 1)]
    (run / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return run


def test_opening_a_project_shows_its_last_run_and_offers_resume(idle_window, qtbot, tmp_path):
    window, panel = idle_window, idle_window.train_panel
    project = tmp_path / "p" / "project.toml"
    project.parent.mkdir()
    save_project(ProjectConfig(), project)
    run = _interrupted_run(project.parent)
    window.open_project(project)
    qtbot.waitUntil(lambda: panel.banner.isVisible() and panel.chart.count() == 120, timeout=10_000)
    assert "The last run stopped at step 120 of 400" in panel.banner.text()
    assert panel.banner.action.text() == "Resume"
    assert panel._resume_target == run
    # a new project without runs: nothing of the other project is left
    other = tmp_path / "q" / "project.toml"
    other.parent.mkdir()
    save_project(ProjectConfig(), other)
    window.open_project(other)
    qtbot.waitUntil(lambda: window.project_file == other.resolve(), timeout=10_000)
    qtbot.wait(200)
    assert not panel.banner.isVisible() and panel.chart.count() == 0 and panel.gallery.count() == 0
    assert panel.history.runs == []


def test_history_shows_the_active_run_as_running(qtbot, tmp_path):
    from studio.run_folder import list_runs
    from ui.widgets.run_history import RunHistory

    run = _interrupted_run(tmp_path, step=0, total=30)
    history = RunHistory()
    qtbot.addWidget(history)
    history._fill(list_runs(tmp_path))
    assert history.tree.topLevelItem(0).text(1) == "interrupted"
    history.set_active_run(run, 0, 30)
    history.show_active_step(5)
    assert history.tree.topLevelItem(0).text(1) == "running"
    assert history.tree.topLevelItem(0).text(2) == "5 / 30"
    assert not history.resume_button.isEnabled()


def test_the_last_project_reopens_and_a_missing_one_is_named(qtbot, tmp_path, monkeypatch):
    from dataclasses import replace

    from studio.paths import CONFIG_ENV, DATA_ENV
    from ui.app import open_main_window
    from ui.settings import load_settings, save_settings

    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    project = tmp_path / "p" / "project.toml"
    project.parent.mkdir()
    save_project(ProjectConfig(), project)
    _interrupted_run(project.parent)
    save_settings(replace(load_settings(), last_project=str(project.resolve())))
    window, shell = open_main_window(None, start_worker=False)
    window.show()
    shell.start(None)
    panel = window.train_panel
    qtbot.waitUntil(lambda: window.project_file == project.resolve() and panel.chart.count() == 120, timeout=10_000)
    assert shell.welcome is None and "stopped at step 120" in panel.banner.text()
    window.close()

    project.unlink()
    window, shell = open_main_window(None, start_worker=False)
    window.show()
    shell.start(None)
    qtbot.waitUntil(lambda: shell.welcome is not None and shell.welcome.isVisible(), timeout=5000)
    assert "no longer there" in shell.welcome.status.text() and str(project.resolve()) in shell.welcome.status.text()
    shell.welcome.reject()
    window.close()
