"""App settings: stored in the (overridable) config folder, survive a restart, and never stop the app starting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from studio.paths import CONFIG_ENV, DATA_ENV, config_dir, data_dir, demo_project_dir
from ui.settings import (MAX_RECENT, AppSettings, PreviewDefaults, load_settings, qsettings, save_settings,
                         settings_path)


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv(CONFIG_ENV, str(folder))
    return folder


def test_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "c"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "d"))
    assert config_dir() == tmp_path / "c"
    assert settings_path() == tmp_path / "c" / "settings.toml"
    assert data_dir() == tmp_path / "d"
    assert demo_project_dir() == tmp_path / "d" / "demo-project"
    monkeypatch.delenv(CONFIG_ENV)
    assert "lora-studio" in str(config_dir())  # the platform's own folder otherwise


def test_first_start_has_defaults_and_writes_nothing(config):
    s = load_settings()
    assert s == AppSettings()
    assert s.theme == "system" and s.show_welcome and s.recent_projects == ()
    assert not config.exists()


def test_round_trip(config, tmp_path):
    s = AppSettings(theme="dark", output_folder=str(tmp_path / "out"), model_folders=("/models/a", "/models/b"),
                    preview=PreviewDefaults(prompt="a castle", negative_prompt="", seed=7, steps=12, width=768,
                                            height=512),
                    show_welcome=False, last_folder="/x")
    path = save_settings(s)
    assert path == config / "settings.toml"
    assert 'theme = "dark"' in path.read_text(encoding="utf-8")  # readable by a person
    assert load_settings() == s
    assert load_settings().effective_output_folder() == tmp_path / "out"


def test_recent_projects_newest_first_unique_and_bounded(config, tmp_path):
    s = AppSettings()
    files = []
    for i in range(MAX_RECENT + 3):
        f = tmp_path / f"p{i}" / "project.toml"
        f.parent.mkdir()
        f.write_text("", encoding="utf-8")
        files.append(f)
        s = s.with_recent(f)
    s = s.with_recent(files[5])
    assert len(s.recent_projects) == MAX_RECENT
    assert s.recent_projects[0] == str(files[5].resolve())
    assert s.recent_projects.count(str(files[5].resolve())) == 1
    files[-1].unlink()  # a deleted project drops off the list shown
    assert files[-1] not in s.existing_recent()
    save_settings(s)
    assert load_settings().recent_projects == s.recent_projects


def test_damaged_file_starts_with_defaults(config):
    config.mkdir()
    (config / "settings.toml").write_text("theme = [unclosed", encoding="utf-8")
    assert load_settings() == AppSettings()


def test_wrong_values_fall_back_one_by_one(config, caplog):
    config.mkdir()
    (config / "settings.toml").write_text(
        'theme = "purple"\nshow_welcome = "yes"\nmodel_folders = ["/ok"]\nmystery = 1\n'
        '[preview]\nsteps = "many"\nseed = 99\n', encoding="utf-8")
    s = load_settings()
    assert s.theme == "system"  # unknown theme
    assert s.show_welcome is True  # wrong type
    assert s.model_folders == ("/ok",)  # good values are kept
    assert s.preview.seed == 99 and s.preview.steps == PreviewDefaults().steps
    assert "mystery" in caplog.text and "steps" in caplog.text


def test_unknown_theme_is_refused_in_code():
    with pytest.raises(ValueError):
        AppSettings(theme="purple")


def test_window_state_lives_beside_the_settings(config, qapp):
    q = qsettings()
    q.setValue("mainWindow/geometry", b"\x01\x02")
    q.sync()
    assert (config / "window.ini").is_file()
    assert bytes(qsettings().value("mainWindow/geometry")) == b"\x01\x02"


def test_default_output_folder_is_in_documents(config):
    assert load_settings().effective_output_folder().name == "LoRA Studio"
    assert replace(AppSettings(), output_folder="~/x").effective_output_folder() == Path("~/x").expanduser()
