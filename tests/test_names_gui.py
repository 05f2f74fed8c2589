"""The window refuses names another system cannot hold where the user types them: the LoRA name in the Train
form, and the project file chosen for the first save."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402

from tests.train_gui_helpers import idle_window  # noqa: E402,F401 - a fixture

pytestmark = pytest.mark.gui




def test_a_lora_name_that_leaves_its_folder_is_marked_and_nothing_starts(idle_window, qtbot):
    panel = idle_window.train_panel
    panel.form.editor("output", "name").set_value("../../escaped")
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    # with what the empty project lacks: every problem at once, the name first
    assert panel.form.marked_fields() == [("output", "name"), ("model", "path"), ("dataset", "folders")]
    assert "[output] name is '../../escaped', which cannot be a file name" in panel.banner.hint.text()
    assert panel.banner.isVisible()
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
