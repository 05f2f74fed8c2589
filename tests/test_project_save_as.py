"""Save as: the saved copy reads the same model and images, and keeps the Dataset panel's per-image choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import ProjectConfig, load_project, resolve_path, save_project
from studio.dataset.state import DatasetState, load_state, save_state, state_path
from studio.project import save_project_as


def _project(folder: Path) -> tuple[Path, ProjectConfig]:
    (folder / "dataset" / "10_cat").mkdir(parents=True)
    (folder / "model").mkdir()
    cfg = (ProjectConfig()
           .with_section("model", path="model")
           .with_section("dataset", folders=("dataset", "/abs/pictures"), regularization_folders=("../reg",))
           .with_section("sampling", validation_images=("dataset/10_cat/held.png",))
           .with_section("output", directory="output"))
    project = folder / "project.toml"
    save_project(cfg, project)
    return project, cfg


def test_relative_inputs_point_at_the_same_places_from_the_new_folder(tmp_path):
    old, cfg = _project(tmp_path / "a")
    new = tmp_path / "b" / "deeper" / "copy.toml"
    saved = save_project_as(cfg, old, new)
    assert load_project(new) == saved
    for section, name in (("model", "path"), ("dataset", "folders"), ("dataset", "regularization_folders"),
                          ("sampling", "validation_images")):
        before, after = getattr(getattr(cfg, section), name), getattr(getattr(saved, section), name)
        for b, a in zip(before if isinstance(before, tuple) else (before,), after if isinstance(after, tuple) else (after,)):
            assert resolve_path(new, a).resolve() == resolve_path(old, b).resolve(), (section, name)
    assert saved.model.path == "../../a/model"
    assert saved.dataset.folders[1] == "/abs/pictures"  # absolute paths stay as written
    assert saved.output.directory == "output"  # the copy writes its exports beside itself


def test_the_same_folder_changes_nothing(tmp_path):
    old, cfg = _project(tmp_path / "a")
    assert save_project_as(cfg, old, tmp_path / "a" / "other.toml") == cfg


def test_dataset_choices_go_along_unless_the_new_folder_has_its_own(tmp_path):
    old, cfg = _project(tmp_path / "a")
    image = (tmp_path / "a" / "dataset" / "10_cat" / "x.png").resolve()
    save_state(DatasetState().with_excluded([image], True).with_crop(image, (0.1, 0.1, 0.9, 0.8)), old.parent)
    save_project_as(cfg, old, tmp_path / "b" / "project.toml")
    state = load_state(tmp_path / "b")
    assert image in state.excluded and state.crops[image] == pytest.approx((0.1, 0.1, 0.9, 0.8))

    theirs = tmp_path / "c"
    theirs.mkdir()
    save_state(DatasetState(), theirs)
    before = state_path(theirs).read_bytes()
    save_project_as(cfg, old, theirs / "project.toml")
    assert state_path(theirs).read_bytes() == before


@pytest.mark.gui
def test_save_as_from_the_window_updates_the_form_and_the_title(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QFileDialog

    from tests.train_gui_helpers import close_window, open_window

    old, _ = _project(tmp_path / "a")
    window = open_window(qtbot, tmp_path, old, start_worker=False)
    try:
        new = tmp_path / "b" / "copy.toml"
        new.parent.mkdir()
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(new), ""))
        assert window.save_project_as()
        qtbot.waitUntil(lambda: window.project_file == new.resolve() and not window.dirty, timeout=10_000)
        assert window.train_panel.form.config().model.path == "../a/model"
        assert load_project(new).model.path == "../a/model"
        assert "copy.toml" in window.windowTitle()
    finally:
        close_window(window)
