"""The Train panel's base-model picker: models from the settings' model folders with family, precision and
size; choosing one; "Add model folder…" saved in the settings; the detected info or error of the typed path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from studio.config import ProjectConfig, save_project  # noqa: E402
from studio.models.describe import format_size  # noqa: E402
from studio.paths import CONFIG_ENV, DATA_ENV  # noqa: E402
from tests.train_gui_helpers import close_window, open_window  # noqa: E402

pytestmark = pytest.mark.gui
WAIT_MS = 60_000  # the first scan imports torch on its thread: seconds on a loaded 2-core machine


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_sd1, tiny_sdxl) -> Path:
    """A model folder: an fp16 single-file SD 1.x, an SDXL diffusers folder, a LoRA and a text file."""
    import torch
    from safetensors.torch import save_file

    from studio.models.load import load_components
    from studio.models.original_layout import save_original_checkpoint

    folder = tmp_path_factory.mktemp("picker") / "models"
    folder.mkdir()
    c = load_components(tiny_sd1)
    save_original_checkpoint(folder / "one.safetensors", "sd1", c.unet, c.vae, c.text_encoders,
                             tokenizers=c.tokenizers, dtype=torch.float16)
    shutil.copytree(tiny_sdxl, folder / "xl-diffusers")
    save_file({"lora_unet_conv_in.lora_down.weight": torch.zeros(1, 4)}, str(folder / "style-lora.safetensors"))
    (folder / "readme.txt").write_text("not a model")
    return folder


@pytest.fixture
def app_folders(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))


def open_app(qtbot, tmp_path, project=None):
    """The window with the desktop shell (which hands the settings' model folders to the picker)."""
    from ui.desktop import DesktopShell
    from ui.settings import load_settings

    window = open_window(qtbot, tmp_path, project, start_worker=False)
    shell = DesktopShell(window, load_settings())
    return window, shell


def wait_scanned(qtbot, picker, n_models: int) -> None:
    qtbot.waitUntil(lambda: not picker.scanning and len(picker._models) == n_models, timeout=WAIT_MS)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_lists_the_models_in_the_settings_folders_and_chooses_one(qtbot, tmp_path, app_folders, models):
    from ui.settings import AppSettings, save_settings

    save_settings(AppSettings(model_folders=(str(models),)))
    window, _shell = open_app(qtbot, tmp_path)
    try:
        picker = window.train_panel.model_picker
        wait_scanned(qtbot, picker, 2)
        from PySide6.QtCore import Qt

        qtbot.keyClick(picker.focus_widget(), Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
        assert picker.popup.isVisible()
        assert picker.popup.row_texts() == [
            ("one.safetensors", "SD 1.x", "fp16", format_size((models / "one.safetensors").stat().st_size),
             "single file"),
            ("xl-diffusers", "SDXL", "fp32", format_size(folder_size(models / "xl-diffusers")), "diffusers folder"),
        ]
        status = picker.popup.status
        assert "2 models in 1 folder" in status.text() and "1 file skipped" in status.text()
        assert "style-lora.safetensors" in status.toolTip() and "LoRA" in status.toolTip()

        assert not window.dirty
        picker.popup.choose_row(1)
        assert not picker.popup.isVisible()
        assert window.train_panel.form.config().model.path == str(models / "xl-diffusers")
        assert window.dirty
        assert picker.info_text().startswith("SDXL · fp32 · ") and picker.info_text().endswith("diffusers folder")
        assert not picker.info_is_error()
    finally:
        close_window(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_add_model_folder_is_saved_in_the_settings_and_scanned(qtbot, tmp_path, app_folders, models, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from ui.settings import load_settings

    window, shell = open_app(qtbot, tmp_path)
    try:
        picker = window.train_panel.model_picker
        picker.open_list()
        assert picker.popup.row_texts() == [] and "No model folders" in picker.popup.status.text()
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(models))
        picker.popup.add_folder_button.click()
        assert picker.scanning and "Scanning 1 folder" in picker.popup.status.text()  # the GUI thread is free
        assert load_settings().model_folders == (str(models),) == shell.settings.model_folders
        wait_scanned(qtbot, picker, 2)
        assert [r[0] for r in picker.popup.row_texts()] == ["one.safetensors", "xl-diffusers"]
    finally:
        close_window(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_project_model_is_listed_and_a_non_model_path_says_why(qtbot, tmp_path, app_folders, models, tiny_sd1):
    project = tmp_path / "project.toml"
    save_project(ProjectConfig().with_section("model", path=str(tiny_sd1)), project)
    window, _shell = open_app(qtbot, tmp_path, project)  # no model folders in the settings
    try:
        picker = window.train_panel.model_picker
        qtbot.waitUntil(lambda: picker.info_text().startswith("SD 1.x · fp32"), timeout=WAIT_MS)
        assert picker.info_text().endswith("diffusers folder")
        picker.open_list()
        assert picker.popup.row_texts()[0][:2] == ("tiny-sd1  (this project)", "SD 1.x")

        with qtbot.waitSignal(picker.detection_finished, timeout=WAIT_MS):
            picker.set_value(str(models / "readme.txt"))
        assert picker.info_is_error()
        assert "readme.txt is not a model file" in picker.info_text()
        assert picker.popup.row_texts() == []  # nothing to list: no folders, and the field holds no model

        # an older check that finishes late does not overwrite the newer one
        picker.set_value(str(models / "style-lora.safetensors"))
        picker.detect_now()
        with qtbot.waitSignal(picker.detection_finished, timeout=WAIT_MS):
            picker.set_value(str(models / "one.safetensors"))
            picker.detect_now()
        qtbot.wait(300)
        assert picker.info_text().startswith("SD 1.x · fp16") and not picker.info_is_error()
        with qtbot.waitSignal(picker.detection_finished, timeout=WAIT_MS):
            picker.set_value(str(models / "style-lora.safetensors"))
        assert "is a LoRA, not a base model" in picker.info_text()
    finally:
        close_window(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_result_overtaken_by_a_newer_scan_is_dropped(qtbot, tmp_path, app_folders, models):
    from types import SimpleNamespace

    window, _shell = open_app(qtbot, tmp_path)
    try:
        picker = window.train_panel.model_picker
        picker.set_folders([str(models)])
        old = picker._scan_gen
        picker.rescan()
        fake = SimpleNamespace(path=models / "stale.safetensors", family="sd1", prediction="epsilon",
                               precision="fp32", size_bytes=1, layout="single-file", prediction_source="default",
                               notes=())
        picker._scanned(old, SimpleNamespace(models=[fake], skipped=[]))
        assert picker.scanning and picker._models == []
        wait_scanned(qtbot, picker, 2)
        assert all(m.path.name != "stale.safetensors" for m in picker._models)
    finally:
        close_window(window)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_ckpt_files_are_offered_listed_and_their_ema_and_refusals_shown(qtbot, tmp_path, app_folders, tiny_sd1,
                                                                         monkeypatch):
    """Issue 16 B in the window: the file dialog offers .ckpt, the list shows an official-script .ckpt with its
    EMA weights, and an inpainting .ckpt is passed over with its name and reason."""
    from PySide6.QtWidgets import QFileDialog

    from tests import official_checkpoints as official
    from tests.test_models_base_files import pipeline
    from ui.settings import AppSettings, save_settings

    pipe = pipeline(tiny_sd1, "sd1")
    state = official.official_state_dict(pipe, "sd1")
    folder = tmp_path / "ckpts"
    folder.mkdir()
    unet = official.convert_unet(pipe.unet.state_dict(), dict(pipe.unet.config))
    official.save(official.with_ema(state, unet), folder / "sd15-ema.ckpt", fmt="legacy")
    official.save(official.as_inpainting(state), folder / "sd15-inpainting.ckpt")
    save_settings(AppSettings(model_folders=(str(folder),)))
    window, _shell = open_app(qtbot, tmp_path)
    try:
        picker = window.train_panel.model_picker
        wait_scanned(qtbot, picker, 1)
        picker.open_list()
        assert [r[:2] for r in picker.popup.row_texts()] == [("sd15-ema.ckpt", "SD 1.x")]
        status = picker.popup.status
        assert "1 file skipped" in status.text()
        assert "sd15-inpainting.ckpt" in status.toolTip() and "inpainting model" in status.toolTip()
        picker.popup.choose_row(0)
        qtbot.waitUntil(lambda: "contains EMA weights" in picker.info_text(), timeout=WAIT_MS)
        assert picker.info_text().startswith("SD 1.x · fp32 · ") and not picker.info_is_error()

        offered = []
        monkeypatch.setattr(QFileDialog, "getOpenFileName",
                            lambda *args, **kwargs: (offered.append(args[3]), ("", ""))[1])
        picker._choose_file()
        assert offered and "*.ckpt" in offered[0] and "*.safetensors" in offered[0]
    finally:
        close_window(window)
