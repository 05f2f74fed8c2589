"""The pre-flight summary in the Train panel, the CPU notice, the Start confirmation and the machine
defaults the window applies when the worker names its device (issue 18, point 3 and problem 6)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from studio.config import ProjectConfig  # noqa: E402
from studio.hardware import GIB, GpuInfo, Hardware  # noqa: E402
from studio.machine_defaults import Device  # noqa: E402
from tests.conftest import make_images  # noqa: E402
from tests.train_gui_helpers import close_window, idle_window, open_window, write_project  # noqa: E402,F401

CPU = Device("cpu", "CPU", None, 2)
RTX = Device("cuda", "NVIDIA GeForce RTX 3060", 11.7, 8)


def dataset(tmp_path):
    root = tmp_path / "data"
    make_images(root / "10_a", n=3, size=(16, 16))
    make_images(root / "2_b", n=5, size=(16, 16), seed=1)
    return root


def show(panel, qtbot, cfg: ProjectConfig) -> None:
    panel.set_project(cfg, None)
    qtbot.waitUntil(lambda: panel.preflight.summary is not None
                    and panel.preflight.summary.max_steps == cfg.schedule.max_steps
                    and panel.preflight.summary.images > 0, timeout=5000)


def test_summary_counts_the_folders_and_follows_the_form(idle_window, qtbot, tmp_path):
    panel = idle_window.train_panel
    cfg = ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),)).with_section(
        "schedule", batch_size=2, max_steps=80)
    show(panel, qtbot, cfg)
    view = panel.preflight
    assert (view.summary.per_epoch, view.summary.steps_per_epoch, view.summary.epochs) == (40, 20, 4.0)
    assert "80 steps · 4 epochs · about" in view.header.text()
    assert panel.controls.details.text().startswith("Not running. 80 steps · 4 epochs")
    assert "3 × 10 (10_a) + 5 × 2 (2_b) = 40 images an epoch" in view.body.text()
    panel.form.editor("schedule", "max_steps").set_value(200)
    panel.form.changed.emit()  # what an edit by the user emits
    qtbot.waitUntil(lambda: view.summary.max_steps == 200, timeout=5000)
    assert "200 steps · 10 epochs" in view.header.text()
    assert "Steps 200 instead of 1000" in view.body.text()  # differs from the defaults, which are named


def test_cpu_notice_shown_for_a_cpu_and_not_for_nvidia(idle_window, qtbot, tmp_path):
    panel = idle_window.train_panel
    show(panel, qtbot, ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),)))
    view = panel.preflight
    view.set_device(CPU)
    assert view.notice.isVisible()
    assert view.notice.text().startswith("This machine has no usable GPU: training will be very slow (about 10 h")
    assert "lower Resolution to 256" in view.body.text()
    view.set_device(RTX)
    assert not view.notice.isVisible() and "no usable GPU" not in view.body.text()
    assert "estimated for a typical 12 GB GPU" in view.body.text()


def test_start_on_a_cpu_asks_first_and_back_starts_nothing(idle_window, qtbot, tmp_path):
    panel = idle_window.train_panel
    show(panel, qtbot, ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),)))
    panel.preflight.set_device(CPU)
    asked: list[str] = []
    answer = [False]
    panel.preflight.ask = lambda title, text: asked.append(text) or answer[0]
    panel.project_file = tmp_path / "project.toml"  # no save dialog: Start goes straight to the checks
    states: list[str] = []
    panel.run_state_changed.connect(states.append)
    panel.controls.start_button.click()
    assert len(asked) == 1 and "about 10 h" in asked[0]
    assert panel.run_state == "idle" and states == [] and idle_window.sent == []
    answer[0] = True
    panel.controls.start_button.click()
    assert len(asked) == 2 and states[:1] == ["checking"]
    qtbot.waitUntil(lambda: panel.run_state == "idle", timeout=10_000)  # no base model: the checks stop it
    panel.controls.start_button.click()
    assert len(asked) == 2  # the same settings are not asked about twice


def test_a_short_cpu_run_and_any_gpu_run_start_without_asking(idle_window, qtbot, tmp_path):
    panel = idle_window.train_panel
    panel.preflight.ask = lambda *a: pytest.fail("asked")
    cfg = ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),), resolution=64).with_section(
        "schedule", max_steps=40)
    show(panel, qtbot, cfg)
    panel.preflight.set_device(CPU)
    assert panel.preflight.summary.cpu_notice and panel.preflight.confirm_start()
    show(panel, qtbot, ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),)))
    panel.preflight.set_device(RTX)
    assert panel.preflight.confirm_start()


def test_new_project_gets_the_cpu_defaults_and_the_mixer_a_small_preview(idle_window, qtbot):
    window = idle_window
    window.device_ready("cpu")
    cfg = window.train_panel.form.config()
    assert cfg.dataset.resolution == 256 and cfg.schedule.max_steps == 300 and cfg.sampling.steps == 8
    assert window.train_panel.banner.isVisible() and "Settings chosen for the CPU" in window.train_panel.banner.text()
    assert not window.dirty
    mixer = window.mixer_panel
    assert (mixer.size.currentText(), mixer.steps.value()) == ("256×256", 8)
    assert mixer.request().width == 256
    assert window.train_panel.preflight.device.kind in ("cpu", "mps")


def test_an_opened_project_keeps_its_settings(qtbot, tmp_path, tiny_sd1):
    project = write_project(tmp_path, tiny_sd1)
    window = open_window(qtbot, tmp_path, project, start_worker=False)
    try:
        window.device_ready("cpu")
        cfg = window.train_panel.form.config()
        assert cfg.dataset.resolution == 64 and cfg.schedule.max_steps == 200  # as the file says
        assert window.mixer_panel.size.currentText() == "256×256"  # the mixer's defaults are not the project's
    finally:
        close_window(window)


def test_gpu_preview_defaults_follow_the_family_and_leave_user_choices(idle_window, qtbot, monkeypatch):
    window = idle_window
    window._probe = Hardware((GpuInfo(0, "NVIDIA GeForce RTX 4090", int(23.6 * GIB), True, (8, 9)),), "12.8",
                             "cpu", 16)
    window.device_ready("NVIDIA GeForce RTX 4090")
    mixer = window.mixer_panel
    assert (mixer.size.currentText(), mixer.steps.value()) == ("512×512", 20)
    assert window.train_panel.preflight.device.device_class == "cuda-large"
    monkeypatch.setattr(mixer, "mix_family", lambda: "sdxl")
    mixer.set_preview_defaults()
    assert (mixer.size.currentText(), mixer.steps.value()) == ("1024×1024", 25)
    mixer.steps.setValue(12)  # the user's choice
    monkeypatch.setattr(mixer, "mix_family", lambda: "sd1")
    mixer.set_preview_defaults()
    assert (mixer.size.currentText(), mixer.steps.value()) == ("512×512", 12)


def test_the_summary_is_the_tab_shown_before_a_run_and_previews_during_one(idle_window, qtbot, tmp_path):
    panel = idle_window.train_panel
    show(panel, qtbot, ProjectConfig().with_section("dataset", folders=(str(dataset(tmp_path)),)).with_section(
        "model", path=str(tmp_path / "base.safetensors")))  # the files are checked before _checked: not here
    assert panel.tabs.currentWidget() is panel.preflight and panel.tabs.tabText(0) == "Before you start"
    assert panel.charts_split.sizes()[0] == 0 and panel.preflight.height() > 300  # no empty chart above it
    panel.project_file = tmp_path / "project.toml"
    panel.preflight.set_device(RTX)  # no confirmation on a GPU
    panel._checked(panel.form.config(), panel.project_file, [])  # the checks passed: the run begins
    assert panel.run_state == "starting" and panel.tabs.currentWidget() is panel.gallery
    assert panel.charts_split.sizes()[0] > 100  # the chart is back for the run


def test_the_summary_on_a_cpu_fits_1024_by_700(qtbot, qapp, tmp_path):
    from tests.test_window_fits_1024 import cut_texts
    from ui.theme import apply_theme

    apply_theme(qapp, "light")  # as the app does: the style sheet's padding counts
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    try:
        window.resize(1024, 700)
        qtbot.waitUntil(lambda: window.width() == 1024)
        window.tabs.setCurrentWidget(window.train_panel)
        window.device_ready("cpu")
        panel = window.train_panel
        panel.form.editor("dataset", "folders").set_value((str(dataset(tmp_path)),))
        panel.form.changed.emit()
        qtbot.waitUntil(lambda: panel.preflight.summary is not None and panel.preflight.summary.images == 8,
                        timeout=5000)
        qtbot.wait(10)
        assert window.minimumSizeHint().height() <= 700 and window.minimumSizeHint().width() <= 1024
        assert cut_texts(window) == []
        assert panel.preflight.notice.isVisible() and panel.controls.details.text().startswith("Not running. 300")
    finally:
        close_window(window)
