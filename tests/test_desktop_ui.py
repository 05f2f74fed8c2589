"""Desktop pieces: themes, About, Settings, menus and shortcuts, notifications, open-folder, the welcome screen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPalette, QUndoCommand, QUndoGroup, QUndoStack
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

from studio.config import load_project
from studio.hardware import GIB, GpuInfo, Hardware
from studio.paths import CONFIG_ENV, DATA_ENV
from ui.settings import AppSettings, PreviewDefaults

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parent.parent

CPU = Hardware((), None, "Test CPU", 4)
GPU12 = Hardware((GpuInfo(0, "NVIDIA GeForce RTX 3060", int(11.76 * GIB), True, (8, 6)),), "12.8", "Test CPU", 4)


@pytest.fixture(autouse=True)
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))


@pytest.fixture
def light(qapp):
    from ui.theme import apply_theme

    yield apply_theme(qapp, "light")
    apply_theme(qapp, "light")


# --------------------------------------------------------------------------------------------------
# theme
@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_light_and_dark_palettes(qapp, light):
    from ui.theme import DARK, LIGHT, THEME_PROPERTY, apply_theme

    assert apply_theme(qapp, "dark") == "dark"
    assert qapp.property(THEME_PROPERTY) == "dark"
    assert qapp.palette().color(QPalette.ColorRole.Window).name() == DARK.window
    assert apply_theme(qapp, "light") == "light"
    assert qapp.palette().color(QPalette.ColorRole.Base).name() == LIGHT.base
    assert apply_theme(qapp, "system") in ("light", "dark")  # follows the desktop; offscreen has none
    assert apply_theme(qapp, "nonsense") == "light"


def test_text_is_readable_in_both_themes():
    """Text on window and base backgrounds, and accent text on the accent, keep a WCAG contrast >= 4.5."""
    from ui.theme import THEMES

    from tests.test_dark_theme import contrast_ratio as contrast

    for colors in THEMES.values():
        for fg, bg in ((colors.text, colors.window), (colors.text, colors.base), (colors.muted, colors.window),
                       (colors.text, colors.warning_bg), (colors.text, colors.info_bg),
                       (colors.accent_text, colors.accent)):
            assert contrast(fg, bg) >= 4.5, (fg, bg)


def test_stylesheet_has_no_fixed_sizes():
    """Only 1 px borders are in pixels; paddings and radii are in em so they grow with font and scale."""
    import re

    from ui.theme import THEMES, stylesheet

    for colors in THEMES.values():
        sizes = re.findall(r"(\d+(?:\.\d+)?)(px|pt)", stylesheet(colors))
        assert sizes == [("1", "px")] * len(sizes)


SCALE_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from PySide6.QtWidgets import QApplication, QAbstractButton, QLabel
from studio.hardware import Hardware
from ui.settings import AppSettings
from ui.theme import apply_theme
from ui.dialogs.welcome import WelcomeDialog
app = QApplication([])
apply_theme(app, "dark")
d = WelcomeDialog(AppSettings(), hardware=Hardware((), None, "Test CPU", 4))
d.show(); app.processEvents()
cut = []
for w in d.findChildren(QAbstractButton) + d.findChildren(QLabel):
    if w.isVisible() and not (isinstance(w, QLabel) and w.wordWrap()):
        if w.width() < w.minimumSizeHint().width() or w.height() < w.minimumSizeHint().height():
            cut.append(w.text())
print(json.dumps({"ratio": d.devicePixelRatioF(), "em": d.fontMetrics().height(),
                  "width": d.width(), "image": d.grab().width(), "cut": cut}))
"""


@pytest.mark.parametrize("scale", ["1", "2"])
def test_welcome_fits_its_text_at_100_and_200_percent(scale):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR=scale)
    out = subprocess.run([sys.executable, "-c", SCALE_PROBE, str(ROOT)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ratio"] == float(scale)
    assert result["image"] == round(result["width"] * float(scale))  # really rendered at that scale
    assert result["cut"] == []  # no button or label narrower than its text


# --------------------------------------------------------------------------------------------------
# About, Settings
@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_about_shows_the_versions_and_copies_them(qtbot, light):
    import torch

    from ui.dialogs.about import AboutDialog

    dialog = AboutDialog(hardware=GPU12)
    qtbot.addWidget(dialog)
    for key in ("torch", "diffusers", "peft", "transformers", "CUDA"):
        assert dialog.value_labels[key].text()
    assert dialog.value_labels["torch"].text().startswith(torch.__version__.split("+")[0])
    assert "RTX 3060" in dialog.value_labels["Device"].text()
    dialog.copy_button.click()
    copied = QApplication.clipboard().text()
    assert "torch:" in copied and "diffusers:" in copied and "RTX 3060" in copied


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_settings_dialog_edits_and_keeps_the_rest(qtbot, light, tmp_path):
    from ui.dialogs.settings_dialog import SettingsDialog

    original = AppSettings(recent_projects=("/p/project.toml",), last_folder="/p")
    dialog = SettingsDialog(original)
    qtbot.addWidget(dialog)
    assert dialog.theme.currentData() == "system"
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.output_folder.setText(str(tmp_path / "exports"))
    dialog.add_model_folder_path(tmp_path / "models")
    dialog.add_model_folder_path(tmp_path / "models")  # no duplicates
    dialog.prompt.setText("a red fox")
    dialog.seed.setValue(99)
    dialog.steps.setValue(30)
    dialog.width_px.setValue(768)
    dialog.show_welcome.setChecked(False)
    s = dialog.edited()
    assert s.theme == "dark" and s.output_folder == str(tmp_path / "exports")
    assert s.model_folders == (str(tmp_path / "models"),)
    assert s.preview == PreviewDefaults(prompt="a red fox", negative_prompt=PreviewDefaults().negative_prompt,
                                        seed=99, steps=30, width=768, height=512)
    assert s.show_welcome is False
    assert s.recent_projects == original.recent_projects and s.last_folder == "/p"
    dialog.model_folders.setCurrentRow(0)
    dialog.remove_model_folder.click()
    dialog.restore_button.click()
    restored = dialog.edited()
    assert restored.theme == "system" and restored.model_folders == () and restored.preview == PreviewDefaults()
    assert restored.recent_projects == original.recent_projects  # not a setting the user edits here


# --------------------------------------------------------------------------------------------------
# menus, shortcuts, full screen
class Bump(QUndoCommand):
    def __init__(self, box: list[int]) -> None:
        super().__init__("bump")
        self.box = box

    def redo(self) -> None:
        self.box[0] += 1

    def undo(self) -> None:
        self.box[0] -= 1


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_menus_and_shortcuts(qtbot, light):
    from ui.actions import create_actions

    window = QMainWindow()
    qtbot.addWidget(window)
    group = QUndoGroup(window)
    stack = QUndoStack(group)
    group.setActiveStack(stack)
    actions = create_actions(window, group)

    def has(action, key: str) -> bool:
        return QKeySequence(key) in action.shortcuts()

    assert has(actions.undo, "Ctrl+Z") and has(actions.redo, "Ctrl+Shift+Z")
    assert has(actions.full_screen, "F11") and has(actions.new_project, "Ctrl+N")
    assert actions.undo in window.actions()  # shortcuts work with the menu bar hidden (full screen)

    box = [0]
    assert not actions.undo.isEnabled()
    stack.push(Bump(box))
    assert box == [1] and actions.undo.isEnabled() and "bump" in actions.undo.text()
    actions.undo.trigger()
    assert box == [0] and actions.redo.isEnabled()
    actions.redo.trigger()
    assert box == [1]


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_full_screen_toggles_back_to_the_previous_state(qtbot, light):
    from ui.actions import create_actions, toggle_full_screen

    window = QMainWindow()
    qtbot.addWidget(window)
    actions = create_actions(window, QUndoGroup(window))
    actions.full_screen.triggered.connect(lambda checked: toggle_full_screen(window, checked))
    window.show()
    actions.full_screen.trigger()
    qtbot.waitUntil(window.isFullScreen)
    assert actions.full_screen.isChecked()
    actions.full_screen.trigger()
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not actions.full_screen.isChecked()


# --------------------------------------------------------------------------------------------------
# notifications and open-folder
@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_notifies_only_when_the_window_is_in_the_background(qtbot, light):
    from ui.notifications import Notifier

    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    notifier = Notifier(window, use_tray=False)
    assert notifier.run_finished("cat-lora") is None  # the user is looking at it

    window.showMinimized()
    qtbot.waitUntil(window.isMinimized)
    with qtbot.waitSignal(notifier.delivered) as signal:
        notice = notifier.run_finished("cat-lora", "/out/cat-lora.safetensors")
    assert signal.args[0] == notice
    assert notice.title == "Training finished" and "cat-lora" in notice.message and "/out" in notice.message
    assert notice.method == "alert"
    failed = notifier.run_failed("cat-lora", "out of memory")
    assert failed.error and "out of memory" in failed.message


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_tray_notification_and_click_brings_the_window_back(qtbot, light):
    from ui.notifications import Notifier

    window = QWidget()
    qtbot.addWidget(window)
    notifier = Notifier(window, use_tray=True)
    assert notifier.method == "tray"
    notice = notifier.notify("Training finished", "done")  # the window is not even shown: background
    assert notice is not None and notice.method == "tray"
    with qtbot.waitSignal(notifier.activated):
        notifier._tray.messageClicked.emit()
    assert window.isVisible()


def test_open_folder_button(qtbot, tmp_path):
    from ui.open_folder import folder_url, nearest_existing
    from ui.widgets.open_folder_button import OpenFolderButton

    target: dict[str, Path | None] = {"folder": None}
    opened: list[Path] = []
    button = OpenFolderButton(lambda: target["folder"], opener=lambda p: opened.append(p) or True)
    qtbot.addWidget(button)
    assert not button.isEnabled()
    target["folder"] = tmp_path / "out"
    button.refresh()
    assert button.isEnabled() and str(tmp_path) in button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert opened == [tmp_path / "out"]
    # a folder not yet written opens its nearest existing parent; a file opens its folder
    assert nearest_existing(tmp_path / "out" / "a" / "b") == tmp_path
    f = tmp_path / "x.safetensors"
    f.write_bytes(b"")
    assert Path(folder_url(f).toLocalFile()) == tmp_path


# --------------------------------------------------------------------------------------------------
# welcome screen
@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_welcome_on_a_cpu_machine_says_so(qtbot, light):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(), hardware=CPU)
    qtbot.addWidget(dialog)
    assert dialog.hardware_banner.property("role") == "banner-warning"
    assert "CPU" in dialog.hardware_title.text() and "slow" in dialog.hardware_title.text()
    assert dialog.recommendation.preset == "demo"
    # a new project on a CPU starts from the default settings, never the demo's tiny-model values
    assert dialog.preset.currentData() == "" and dialog.preset.findData("demo") < 0
    assert dialog.preset.currentText() == "Default settings (recommended)"
    assert dialog.recent_empty.isVisibleTo(dialog) and not dialog.recent.isVisibleTo(dialog)


def test_welcome_with_a_gpu_shows_it_and_the_recommended_preset(qtbot, light):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(), hardware=GPU12)
    qtbot.addWidget(dialog)
    assert dialog.hardware_banner.property("role") == "banner-info"
    assert "RTX 3060" in dialog.hardware_title.text() and "11.8 GB" in dialog.hardware_title.text()
    assert "bf16" in dialog.hardware_title.text()
    assert "sdxl-12gb" in dialog.hardware_detail.text()
    assert dialog.preset.currentData() == "sdxl-12gb"


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_welcome_detects_the_hardware_by_itself(qtbot, light):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings())
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.hardware is not None, timeout=30000)
    assert dialog.recommendation is not None
    assert "Checking" not in dialog.hardware_title.text()


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_welcome_recent_projects(qtbot, light, tmp_path):
    from ui.dialogs.welcome import WelcomeDialog

    kept = tmp_path / "cat" / "project.toml"
    kept.parent.mkdir()
    kept.write_text("", encoding="utf-8")
    gone = tmp_path / "gone" / "project.toml"
    settings = AppSettings().with_recent(gone).with_recent(kept)
    dialog = WelcomeDialog(settings, hardware=CPU)
    qtbot.addWidget(dialog)
    assert dialog.recent.count() == 1  # the moved project is not offered
    item = dialog.recent.item(0)
    assert "cat" in item.text()
    with qtbot.waitSignal(dialog.chosen) as signal:
        dialog.recent.itemDoubleClicked.emit(item)
    assert signal.args[0].kind == "recent" and signal.args[0].project_file == kept.resolve()
    assert dialog.result() == dialog.DialogCode.Accepted
    after = dialog.settings_after()
    assert after.recent_projects[0] == str(kept.resolve())


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_welcome_open_existing(qtbot, light, tmp_path):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(), hardware=CPU)
    qtbot.addWidget(dialog)
    dialog.ask_project_file = lambda: None  # the user cancelled the file dialog
    dialog.open_button.click()
    assert dialog.choice is None and dialog.isEnabled()
    dialog.ask_project_file = lambda: tmp_path / "x" / "project.toml"
    dialog.open_button.click()
    assert dialog.choice.kind == "open" and dialog.choice.project_file == tmp_path / "x" / "project.toml"


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_welcome_new_project_uses_the_chosen_preset(qtbot, light, tmp_path):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(output_folder=str(tmp_path / "exports")), hardware=GPU12)
    qtbot.addWidget(dialog)
    dialog.ask_new_project_folder = lambda: tmp_path / "My Cat"
    dialog.preset.setCurrentIndex(dialog.preset.findData("sd15-character"))
    with qtbot.waitSignal(dialog.chosen, timeout=20000) as signal:
        dialog.new_button.click()
    choice = signal.args[0]
    assert choice.kind == "new" and choice.project_file == (tmp_path / "My Cat" / "project.toml").resolve()
    cfg = load_project(choice.project_file)
    assert cfg.dataset.resolution == 512 and cfg.network.rank == 32  # the sd15-character preset
    assert cfg.output.name == "my-cat" and cfg.output.directory == str(tmp_path / "exports")
    assert (tmp_path / "My Cat" / "dataset").is_dir()

    again = WelcomeDialog(AppSettings(), hardware=GPU12)  # the folder now has a project: refused, explained
    qtbot.addWidget(again)
    again.ask_new_project_folder = lambda: tmp_path / "My Cat"
    again.new_button.click()
    qtbot.waitUntil(lambda: again.status.isVisibleTo(again) and "already exists" in again.status.text())
    assert again.choice is None and again.new_button.isEnabled()


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_show_at_startup_checkbox(qtbot, light):
    from ui.dialogs.welcome import WelcomeDialog

    dialog = WelcomeDialog(AppSettings(show_welcome=True), hardware=CPU)
    qtbot.addWidget(dialog)
    dialog.show_at_startup.setChecked(False)
    dialog.reject()
    assert dialog.settings_after().show_welcome is False
    assert dialog.settings_after().recent_projects == ()
