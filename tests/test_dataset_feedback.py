"""What the Dataset panel tells the user (issue 18): drops sorted by kind and said in one line, the empty
grid's hint and the drag highlight as painted, counters that follow every edit, Check images showing its
result in the Problems tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDragLeaveEvent, QImage, QPalette
from PySide6.QtWidgets import QApplication

from studio.dataset.tags import TagOp
from tests.test_dataset_panel import _folder, drop, panel  # noqa: F401 - `panel` is the shared fixture
from tests.test_drop_kinds import write_base_model, write_lora
from tests.train_gui_helpers import close_window, open_window
from ui.panels.dataset_panel import DatasetPanel
from ui.theme import apply_theme
from ui.widgets.dataset_grid import EMPTY_HINT

pytestmark = pytest.mark.gui


def _diffusers_folder(path: Path) -> Path:
    (path / "unet").mkdir(parents=True)
    (path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}', encoding="utf-8")
    return path


def _pixels_near(image: QImage, colour: QColor, rect=None, tolerance: int = 40) -> int:
    """How many pixels (every 2nd in each direction) are within `tolerance` of `colour` on each channel."""
    r = rect or image.rect()
    n = 0
    for y in range(r.top(), r.bottom(), 2):
        for x in range(r.left(), r.right(), 2):
            c = image.pixelColor(x, y)
            if (abs(c.red() - colour.red()) <= tolerance and abs(c.green() - colour.green()) <= tolerance
                    and abs(c.blue() - colour.blue()) <= tolerance):
                n += 1
    return n


def _ink(panel: DatasetPanel, image: QImage) -> list[QColor]:
    """Pixels (every 4th each way) in the middle of the grid that stand out from its background: text."""
    base = panel.grid.palette().color(QPalette.ColorRole.Base)
    r = image.rect().adjusted(20, 20, -20, -20)
    return [c for y in range(r.top(), r.bottom(), 4) for x in range(r.left(), r.right(), 4)
            if abs((c := image.pixelColor(x, y)).lightness() - base.lightness()) > 60]


def _grab(panel: DatasetPanel) -> QImage:
    panel.grid.viewport().repaint()
    return panel.grid.viewport().grab().toImage()


@pytest.mark.slow  # about 2 s: left out of the fast subset (-m "not slow")
def test_a_mixed_drop_on_the_window_sends_each_kind_where_it_belongs(qtbot, tmp_path: Path):
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    try:
        images = _folder(tmp_path / "cats", 3)
        model = _diffusers_folder(tmp_path / "sd15")  # a folder, but a model: never a dataset of 0 images
        lora = write_lora(tmp_path / "style.safetensors")
        notes = tmp_path / "notes.md"
        notes.write_text("x", encoding="utf-8")
        dataset = window.dataset_panel
        window.tabs.setCurrentWidget(dataset)

        drop(dataset, [images, model, lora, notes])

        assert dataset.roots == [images.resolve()]
        qtbot.waitUntil(lambda: dataset.model.rowCount() == 3, timeout=10_000)
        assert Path(window.train_panel.model_picker.value()) == model.resolve()
        assert [Path(r.path) for r in window.mixer_panel.rows] == [lora.resolve()]
        note = ("1 folder added to the dataset · base model set to sd15 · 1 LoRA added to the mixer · "
                "ignored notes.md: not an image, a base model or a LoRA")
        assert dataset.drop_note == note
        assert window.statusBar().currentMessage() == note
    finally:
        close_window(window)


def test_a_dropped_checkpoint_is_the_model_not_a_dataset(qtbot, panel: DatasetPanel, tmp_path: Path):
    base = write_base_model(tmp_path / "base.safetensors")
    models, loras = [], []
    panel.model_dropped.connect(models.append)
    panel.loras_dropped.connect(loras.append)
    with qtbot.assertNotEmitted(panel.folders_changed):
        drop(panel, [base])
    assert models == [str(base.resolve())] and loras == []
    assert panel.roots == [] and panel.drop_note == "base model set to base.safetensors"


def test_the_empty_grid_paints_its_hint_until_images_load(qtbot, panel: DatasetPanel, tmp_path: Path):
    qtbot.waitUntil(lambda: panel.grid.empty_hint == EMPTY_HINT, timeout=5_000)  # after "Reading folders…"
    assert len(_ink(panel, _grab(panel))) > 20  # the hint's text is drawn

    panel.add_folders([_folder(tmp_path / "cats", 2)])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=10_000)
    assert panel.grid.empty_hint == ""
    panel.grid.set_empty_hint(EMPTY_HINT)  # rows in the grid: a hint is never painted over them
    thumbs_only = len(_ink(panel, _grab(panel)))
    panel.grid.set_empty_hint("")
    assert len(_ink(panel, _grab(panel))) == thumbs_only

    panel.filter_bar.text.setText("no such caption")  # every image filtered out: the hint says why
    qtbot.waitUntil(lambda: panel.grid.empty_hint == "No image matches the filter.", timeout=5_000)


@pytest.mark.slow  # about 2 s: left out of the fast subset (-m "not slow")
def test_the_hint_follows_the_dark_theme(qtbot, panel: DatasetPanel):
    app = QApplication.instance()
    try:
        apply_theme(app, "dark")
        base = panel.grid.palette().color(QPalette.ColorRole.Base)
        assert base.lightness() < 100  # the dark theme is on
        qtbot.waitUntil(lambda: panel.grid.empty_hint == EMPTY_HINT, timeout=5_000)
        image = _grab(panel)
        assert image.pixelColor(5, 5).lightness() < 100  # a dark grid
        ink = _ink(panel, image)
        assert len(ink) > 20 and all(c.lightness() > base.lightness() for c in ink)  # light text on it
    finally:
        apply_theme(app, "light")


def test_a_drag_over_the_panel_highlights_the_grid_until_it_leaves(qtbot, panel: DatasetPanel, tmp_path: Path):
    accent = panel.grid.palette().color(QPalette.ColorRole.Highlight)
    edge = panel.grid.viewport().rect().adjusted(0, 0, 0, -panel.grid.viewport().height() + 6)  # top 6 px
    assert _pixels_near(_grab(panel), accent, edge, tolerance=10) == 0

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted() and panel.grid.drop_highlight
    assert _pixels_near(_grab(panel), accent, edge, tolerance=10) > 10  # the dashed outline

    QApplication.sendEvent(panel, QDragLeaveEvent())
    assert not panel.grid.drop_highlight
    assert _pixels_near(_grab(panel), accent, edge, tolerance=10) == 0

    drop(panel, [_folder(tmp_path / "cats", 1)])  # a drop ends the highlight too
    assert not panel.grid.drop_highlight


def _footer_says(panel: DatasetPanel, text: str):
    return lambda: text in panel.footer.text()


@pytest.mark.slow  # about 2 s: left out of the fast subset (-m "not slow")
def test_counters_follow_captions_batch_edits_undo_checks_and_folders(qtbot, panel: DatasetPanel,
                                                                      tmp_path: Path):
    folder = _folder(tmp_path / "cats", 6, captioned=lambda i: i < 2)  # 4 without caption
    panel.add_folders([folder])
    qtbot.waitUntil(_footer_says(panel, "6 images"), timeout=10_000)
    assert "4 without caption" in panel.footer.text()

    for path in panel.model.paths()[2:]:
        panel.set_caption(path, "cat, sitting")
    qtbot.waitUntil(_footer_says(panel, "0 without caption"), timeout=5_000)

    panel.undo_stack.undo()  # the last caption typed
    qtbot.waitUntil(_footer_says(panel, "1 without caption"), timeout=5_000)
    panel.undo_stack.redo()
    qtbot.waitUntil(_footer_says(panel, "0 without caption"), timeout=5_000)

    assert panel.run_batch(TagOp("remove", "sitting"), "all") == 4
    assert panel.run_batch(TagOp("remove", "cat"), "all") == 6  # "cat, pose i" keeps "pose i"
    qtbot.waitUntil(_footer_says(panel, "4 without caption"), timeout=5_000)
    panel.undo_stack.undo()
    qtbot.waitUntil(_footer_says(panel, "0 without caption"), timeout=5_000)

    other = _folder(tmp_path / "dogs", 2, captioned=lambda i: False)
    panel.add_folders([other])
    qtbot.waitUntil(_footer_says(panel, "2 without caption"), timeout=10_000)
    with qtbot.waitSignal(panel.check_finished, timeout=20_000):
        panel.run_check()
    qtbot.waitUntil(_footer_says(panel, "with problems"), timeout=5_000)
    # every image is 32×24 px, under the 64 px resolution; the dogs are copies of two cats (the same seed),
    # so those two are left out of training
    assert "6 for training · 2 without caption · 8 with problems" in panel.footer.text()

    panel.remove_folder(other.resolve())
    qtbot.waitUntil(_footer_says(panel, "0 without caption"), timeout=5_000)
    panel.remove_folder(folder.resolve())
    qtbot.waitUntil(lambda: panel.footer.text() == "No images", timeout=5_000)
    assert panel.grid.empty_hint == EMPTY_HINT


def test_check_images_shows_the_problems_tab_with_what_it_found(qtbot, panel: DatasetPanel, tmp_path: Path):
    panel.set_project([], panel.project_dir, resolution=16)  # the 32×24 test images are big enough
    folder = _folder(tmp_path / "clean", 3)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10_000)
    assert panel.tabs.currentWidget() is not panel.problem_report
    with qtbot.waitSignal(panel.check_finished, timeout=20_000):
        panel.check_action.trigger()
    assert panel.tabs.currentWidget() is panel.problem_report
    assert panel.problem_report.summary.text() == "No problems found in 3 images."

    (folder / "broken.png").write_text("not an image", encoding="utf-8")
    panel.set_project([str(folder)], panel.project_dir, resolution=16)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 4, timeout=10_000)
    panel.tabs.setCurrentIndex(0)
    with qtbot.waitSignal(panel.check_finished, timeout=20_000):
        panel.check_action.trigger()
    assert panel.tabs.currentWidget() is panel.problem_report
    listed = [panel.problem_report.model.path_at(r) for r in range(panel.problem_report.model.rowCount())]
    assert folder / "broken.png" in listed
    assert panel.problem_report.summary.text().startswith("Checked 4 images: 1 with problems")
