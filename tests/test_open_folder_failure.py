"""History ▸ Open folder works or says why not (issue 18): never a click with nothing to see."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

pytestmark = pytest.mark.gui


def _history_with_run(qtbot, tmp_path, monkeypatch):
    from studio import run_folder
    from ui.widgets.run_history import RunHistory

    folder = tmp_path / "runs" / "20261203-0630"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("[schedule]\nmax_steps = 10\n")
    runs = run_folder.list_runs(tmp_path)
    host = QWidget()
    qtbot.addWidget(host)
    history = RunHistory(host)
    history._project_dir = tmp_path
    history._fill(runs)
    return host, history, runs


def test_history_open_folder_opens_the_run_folder(qtbot, tmp_path, monkeypatch):
    host, history, runs = _history_with_run(qtbot, tmp_path, monkeypatch)
    assert len(runs) == 1
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert history.open_folder()
    assert Path(opened[0]) == runs[0].path
    assert host.findChild(QMessageBox, "openFolderFailed") is None


def test_history_open_folder_says_why_when_no_file_manager(qtbot, tmp_path, monkeypatch):
    host, history, runs = _history_with_run(qtbot, tmp_path, monkeypatch)
    assert len(runs) == 1
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)  # "Unable to detect a launcher"
    history.open_button.click()
    box = host.findChild(QMessageBox, "openFolderFailed")
    assert box is not None and box.isVisible()
    assert str(runs[0].path) in box.text()
    assert "file manager" in box.informativeText()
    box.close()


def test_open_output_folder_button_says_why(qtbot, tmp_path):
    from ui.widgets.open_folder_button import OpenFolderButton

    host = QWidget()
    qtbot.addWidget(host)
    button = OpenFolderButton(lambda: tmp_path, parent=host, opener=lambda p: False)
    host.show()
    assert not button.open()
    box = host.findChild(QMessageBox, "openFolderFailed")
    assert box is not None and str(tmp_path) in box.text()
    box.close()


def test_reason_names_the_linux_fix():
    from ui.open_folder import why_not_opened

    assert "xdg-utils" in why_not_opened("linux")
    assert "xdg" not in why_not_opened("win32")
