"""The window refuses names another system cannot hold where the user types them: the LoRA name in the Train
form, and the project file chosen for the first save."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402

from tests.train_gui_helpers import close_window, open_window  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def idle_window(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    sent: list = []
    window.train_panel.command_requested.disconnect(window._send)
    window.train_panel.command_requested.connect(sent.append)
    window.sent = sent
    yield window
    close_window(window)


def test_a_lora_name_that_leaves_its_folder_is_marked_and_nothing_starts(idle_window, qtbot):
    panel = idle_window.train_panel
    panel.form.editor("output", "name").set_value("../../escaped")
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    assert panel.form.marked_fields() == [("output", "name")]
    assert "cannot be a file name" in panel.banner.text() and panel.banner.isVisible()
    assert idle_window.sent == []


def test_a_first_save_under_a_device_name_is_refused(idle_window, qtbot, tmp_path, monkeypatch):
    import ui.panels.train_panel as train_panel

    chosen = tmp_path / "CON.toml"
    monkeypatch.setattr(train_panel.QFileDialog, "getSaveFileName", lambda *a, **k: (str(chosen), ""))
    panel = idle_window.train_panel
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    assert "CON.toml" in panel.banner.text() and "device name on Windows" in panel.banner.text()
    assert panel.banner.isVisible()
    assert panel.project_file is None and not chosen.exists() and idle_window.sent == []
