"""The Train panel: the generated form, validation before start, and a real run from the panel (acceptance 1)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QComboBox, QSpinBox  # noqa: E402

from studio.config import SECTIONS, ProjectConfig, load_preset, load_project, section_type  # noqa: E402
from studio.job_requests import TrainRequest  # noqa: E402
from studio.worker import protocol as p  # noqa: E402
from tests.train_gui_helpers import alive, close_window, idle_window, open_window, write_project  # noqa: E402,F401

pytestmark = pytest.mark.gui




def test_form_is_generated_from_the_config_with_tooltips_ranges_and_choices(idle_window):
    form = idle_window.train_panel.form
    for section in SECTIONS:
        for f in fields(section_type(section)):
            editor = form.editor(section, f.name)
            assert f.metadata["help"].replace("`", "")[:30] in editor.toolTip(), (section, f.name)
    steps = form.editor("schedule", "max_steps").findChild(QSpinBox)
    assert (steps.minimum(), steps.maximum()) == (1, 10_000_000)
    family = form.editor("model", "family").findChild(QComboBox)
    assert [family.itemText(i) for i in range(family.count())] == ["auto", "sd1", "sd2", "sd2-v", "sdxl"]
    eps = form.editor("optimizer", "eps")
    assert not eps.isVisibleTo(form)  # advanced fields start collapsed
    group = form.findChild(type(form.findChild(QComboBox).parent().parent()), "group-model")
    assert group is not None and group.title() == "Model"


def test_form_round_trips_a_config(idle_window):
    form = idle_window.train_panel.form
    cfg = load_preset("sd15-character").with_section("sampling", prompts=("a", "b c")).with_section(
        "schedule", seed=2**32 - 1)
    form.set_config(cfg)
    assert form.config() == cfg


def test_impossible_values_are_highlighted_and_nothing_starts(idle_window, qtbot):
    panel = idle_window.train_panel
    panel.form.editor("optimizer", "unet_lr")._edit.setText("fast")
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    # every problem at once: the typo and what the empty project lacks
    assert panel.form.marked_fields() == [("optimizer", "unet_lr"), ("model", "path"), ("dataset", "folders")]
    assert "[optimizer] unet_lr is 'fast', expected a number" in panel.banner.text() and panel.banner.isVisible()
    panel.form.editor("optimizer", "unet_lr")._edit.setText("2.5")
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    assert "[optimizer] unet_lr is 2.5, expected a value between 0.0 and 1.0" in panel.banner.text()
    assert idle_window.sent == []


def test_missing_model_and_empty_dataset_are_caught_before_start(qtbot, tmp_path):
    project = tmp_path / "project.toml"
    project.write_text('[model]\npath = "no-such-model"\n[dataset]\nfolders = ["empty"]\n', encoding="utf-8")
    (tmp_path / "empty").mkdir()
    window = open_window(qtbot, tmp_path, project, start_worker=False)
    try:
        sent: list = []
        panel = window.train_panel
        panel.command_requested.disconnect(window._send)
        panel.command_requested.connect(sent.append)
        qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.run_state == "idle" and bool(panel.form.marked_fields()), timeout=10_000)
        assert set(panel.form.marked_fields()) == {("model", "path"), ("dataset", "folders")}
        assert "base model not found" in panel.banner.text()
        assert sent == []
    finally:
        close_window(window)


def test_a_preset_changes_only_the_fields_it_names(idle_window, qtbot):
    panel = idle_window.train_panel
    panel.form.set_config(ProjectConfig().with_section("model", path="/models/x.safetensors"))
    index = panel.presets.findData("sd15-style")
    panel.presets.activated.emit(index)
    qtbot.waitUntil(lambda: panel.form.config().schedule == load_preset("sd15-style").schedule,
                    timeout=5000)
    assert panel.form.config().model.path == "/models/x.safetensors"
    assert idle_window.dirty


# --------------------------------------------------------------------------------------------------
# Acceptance 1: a real run of a tiny model from the panel


@pytest.mark.slow
def test_run_from_the_panel_shows_progress_and_previews_and_stops_with_a_checkpoint(qtbot, tmp_path, tiny_sd1):
    project = write_project(tmp_path, tiny_sd1, sampling={"every_n_steps": 4, "prompts": ("photo, red thing",)})
    window = open_window(qtbot, tmp_path, project)
    panel, c = window.train_panel, window.train_panel.controls
    try:
        assert window.worker.state in ("starting", "ready")
        qtbot.mouseClick(c.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.run_state == "running", timeout=120_000)
        qtbot.waitUntil(lambda: panel.gallery.count() >= 1 and panel.gallery.thumbnails[0].loaded, timeout=120_000)
        assert panel.chart.count() >= 4
        qtbot.waitUntil(lambda: c.bar.value() >= 4, timeout=10_000)  # the bar repaints at most 4 times a second
        assert "it/s" in c.details.text() and "epoch" in c.details.text() and "ETA" in c.details.text()
        thumb = panel.gallery.thumbnails[0]
        assert thumb.step == 4 and Path(thumb.path).is_file() and not thumb.pixmap().isNull()
        dialog = panel.gallery.open_image(thumb)  # click to enlarge
        qtbot.waitUntil(lambda: dialog.image.pixmap() is not None and not dialog.image.pixmap().isNull(),
                        timeout=30_000)
        dialog.close()

        qtbot.mouseClick(c.pause_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.run_state == "paused", timeout=30_000)
        assert c.pause_button.text() == "Resume"
        paused_at = panel.last_step
        qtbot.wait(1500)
        assert panel.last_step == paused_at
        qtbot.mouseClick(c.pause_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.run_state == "running" and panel.last_step > paused_at, timeout=30_000)
        qtbot.mouseClick(c.sample_button, Qt.MouseButton.LeftButton)  # previews off the every-4-steps rhythm
        qtbot.waitUntil(lambda: any(s % 4 for s in panel.gallery.steps()), timeout=60_000)
        assert panel.checkpoint_step == 0  # no periodic saves in this project
        qtbot.mouseClick(c.save_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.checkpoint_step > 0, timeout=60_000)
        saved_at = panel.checkpoint_step
        # On a fast machine Stop can arrive before the next step; the stop's checkpoint would then be the same
        # step as Save now's and overwrite it, so stop only once training has moved past it.
        qtbot.waitUntil(lambda: panel.last_step > saved_at, timeout=60_000)

        qtbot.mouseClick(c.stop_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.run_state == "idle", timeout=60_000)
        assert "Stopped at step" in panel.banner.text()
        checkpoints = sorted((panel.run_dir / "checkpoints").glob("checkpoint-*/state.json"))
        assert len(checkpoints) == 2, "one from Save now, one on stopping"
        assert list(checkpoints[-1].parent.glob("*.safetensors"))
        assert len(list(panel.run_dir.glob("test-lora-step*.safetensors"))) == 2
        qtbot.waitUntil(lambda: any(r.path == panel.run_dir and r.status == "stopped" for r in panel.history.runs),
                        timeout=10_000)
        assert load_project(project).model.path == str(tiny_sd1)  # the project was saved before the run
    finally:
        close_window(window)


@pytest.mark.slow
@pytest.mark.serial
def test_closing_during_a_run_asks_saves_stops_and_leaves_no_process(qtbot, tmp_path, tiny_sd1):
    project = write_project(tmp_path, tiny_sd1)
    window = open_window(qtbot, tmp_path, project)
    panel = window.train_panel
    asked = []
    window.confirm_stop_run = lambda: asked.append(True) or True
    try:
        qtbot.waitUntil(lambda: panel.controls.start_button.isEnabled(), timeout=10_000)
        panel.controls.start_button.click()
        qtbot.waitUntil(lambda: panel.last_step >= 1, timeout=120_000)
        pid = window.worker.pid
        window.close()
        assert asked == [True] and window.isVisible()  # the window waits for the worker
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
        qtbot.waitUntil(lambda: not alive(pid), timeout=10_000)
        assert list((panel.run_dir / "checkpoints").glob("checkpoint-*/state.json"))
    finally:
        close_window(window)


def test_start_command_carries_the_form_and_project(idle_window, qtbot, tmp_path, tiny_sd1):
    project = write_project(tmp_path, tiny_sd1)
    idle_window.open_project(project)
    qtbot.waitUntil(lambda: idle_window.project_loaded and idle_window.project_file == project.resolve())
    panel = idle_window.train_panel
    panel.form.editor("schedule", "max_steps").set_value(7)
    panel.controls.start_button.click()
    qtbot.waitUntil(lambda: bool(idle_window.sent), timeout=10_000)
    start = idle_window.sent[0]
    assert isinstance(start, TrainRequest) and start.project_file == str(project.resolve())
    assert "max_steps = 7" in start.config_toml and start.resume_from is None
    assert load_project(project).schedule.max_steps == 7


def test_events_of_other_jobs_leave_the_train_panel_alone(idle_window):
    """The mixer's previews run in the same worker; their Failed/Finished are not the Train panel's."""
    from studio.events import Failed, Finished, Log

    panel = idle_window.train_panel
    for message in (p.JobStarted(job_id=7, kind="mix_preview"), Log(level="info", text="mixing"),
                    Failed(error="mixer broke", hint="h"), Finished(outputs=()), p.JobEnded(job_id=7, kind="mix_preview")):
        panel.handle_message(message)
    assert not panel.banner.isVisible() and panel.run_state == "idle"
    assert "mixing" not in panel.log.text()
    panel.handle_message(Log(level="info", text="outside any job"))
    panel.handle_message(p.JobStarted(job_id=8, kind="start"))
    panel.handle_message(Failed(error="no dataset folder is set", hint="add one"))
    assert panel.banner.isVisible() and "no dataset folder" in panel.banner.text()
    assert "outside any job" in panel.log.text()
