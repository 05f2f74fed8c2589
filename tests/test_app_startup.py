"""`ui.app.main`: a crash while building the window shows a dialog with the traceback, and exits 1."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

pytestmark = pytest.mark.gui


def test_startup_crash_shows_the_traceback_in_a_dialog(qtbot, monkeypatch):
    import ui.app as app_module

    def broken(*args, **kwargs):
        raise RuntimeError("the window could not be built")

    shown = []
    monkeypatch.setattr(app_module, "open_main_window", broken)
    monkeypatch.setattr(app_module, "show_error_dialog", lambda title, message, details: shown.append(details))
    assert app_module.main([]) == 1
    assert "RuntimeError: the window could not be built" in shown[0] and "Traceback" in shown[0]


def test_project_argument_accepts_a_folder(tmp_path):
    from ui.app import project_path

    assert project_path(str(tmp_path)) == tmp_path / "project.toml"
    assert project_path(str(tmp_path / "x.toml")) == tmp_path / "x.toml"
    assert project_path(None) is None


def test_gui_command_is_registered_and_imports_qt_only_when_run():
    from studio.cli import build_parser

    args = build_parser().parse_args(["gui", "some/project.toml"])
    assert args.project == "some/project.toml" and args.func.__module__ == "studio.cli.gui_cmd"
