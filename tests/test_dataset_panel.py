"""The Dataset panel under pytest-qt (offscreen): drops, caption editing, batch edits with undo on disk,
outside edits reloaded, exclude/focus/repeats in dataset.json, the check report, filters, auto-caption."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtWidgets import QApplication
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from studio.dataset.autocaption import CaptionResult
from studio.dataset.tags import TagOp
from studio.dataset.thumbnails import ThumbnailCache
from ui.panels.dataset_panel import DatasetPanel


def _folder(path: Path, n: int, captioned=lambda i: True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype("uint8")).save(path / f"img{i:03d}.png")
        if captioned(i):
            (path / f"img{i:03d}.txt").write_text(f"cat, pose {i}", encoding="utf-8")
    return path


def _read(image: Path) -> str | None:
    side = image.with_suffix(".txt")
    return side.read_text(encoding="utf-8") if side.exists() else None


@pytest.fixture()
def panel(qtbot, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    p = DatasetPanel(cache=ThumbnailCache(tmp_path / "cache"), settings=settings, check_on_load=False, workers=2)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    project = tmp_path / "project"
    project.mkdir()
    p.set_project([], project, resolution=64)
    yield p
    p.shutdown()


def drop(panel: DatasetPanel, paths: list[Path]) -> None:
    """A real drag-enter and drop with file URLs, sent to the panel like the window system would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = panel.grid.mapTo(panel, panel.grid.rect().center())
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, event)
    assert event.isAccepted()


def test_drop_edit_batch_and_undo_on_disk(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "10_cats", 100, captioned=lambda i: i % 7 != 0)
    before = {p: _read(p) for p in sorted(folder.glob("*.png"))}
    with qtbot.waitSignal(panel.folders_changed) as sig:
        drop(panel, [folder])
    assert sig.args == [[str(folder.resolve())]]
    qtbot.waitUntil(lambda: panel.model.rowCount() == 100, timeout=10000)
    assert panel.model.items[0].record.repeats == 10
    qtbot.waitUntil(lambda: panel.thumbnails_ready() == 100, timeout=20000)
    assert all(it.thumb[:2] == b"\xff\xd8" for it in panel.model.items)

    # typing a caption writes the sidecar (after the short pause, or at once when focus moves on)
    first = panel.model.items[0].path
    panel.select_path(first)
    assert panel.editor.path == first
    panel.editor.text.setPlainText("a tabby cat, sitting")
    qtbot.waitUntil(lambda: _read(first) == "a tabby cat, sitting", timeout=5000)
    assert panel.model.item(first).caption == "a tabby cat, sitting"

    # trigger word first over all 100 images: 100 files change; one undo restores all 100
    panel.grid.selectAll()
    assert len(panel.selected_paths()) == 100
    assert panel.run_batch(TagOp("trigger_first", "sks"), "selection") == 100
    for p in before:
        assert _read(p).startswith("sks"), p
    assert _read(first) == "sks, a tabby cat, sitting"
    assert panel.undo_stack.undoText().startswith("Trigger word")
    panel.undo_stack.undo()
    for p, text in before.items():
        assert _read(p) == (text if p != first else "a tabby cat, sitting")
    assert panel.model.item(first).caption == "a tabby cat, sitting"
    panel.undo_stack.undo()  # the typed caption
    assert _read(first) == before[first]
    panel.undo_stack.redo()
    panel.undo_stack.redo()
    assert all(_read(p).startswith("sks") for p in before)


def test_outside_edit_is_reloaded_not_overwritten(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "imgs", 3)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10000)
    image = panel.model.items[1].path
    panel.select_path(image)
    # another program rewrites the caption while it is open here, then the user types
    image.with_suffix(".txt").write_text("edited in another program", encoding="utf-8")
    panel.editor.text.setPlainText("typed here")
    panel.editor.flush()
    assert _read(image) == "edited in another program"
    assert panel.model.item(image).caption == "edited in another program"
    assert panel.editor.text.toPlainText() == "edited in another program"
    assert "reloaded" in panel.banner.text() or "reloaded" in panel.editor.title.text()
    assert panel.undo_stack.count() == 0  # nothing was written, so nothing to undo

    # a change made while the user is not typing shows up by itself (file watcher)
    time.sleep(0.05)
    image.with_suffix(".txt").write_text("second outside edit", encoding="utf-8")
    qtbot.waitUntil(lambda: panel.editor.text.toPlainText() == "second outside edit", timeout=10000)
    assert panel.model.item(image).caption == "second outside edit"
    # and the next edit here goes through against the reloaded text
    panel.editor.text.setPlainText("final")
    panel.editor.flush()
    assert _read(image) == "final"


def test_exclude_focus_and_repeats_in_dataset_json(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "3_dogs", 4)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 4, timeout=10000)
    state_file = panel.project_dir / "dataset.json"
    a, b = panel.model.items[0].path, panel.model.items[1].path
    panel.set_excluded([a, b], True)
    data = json.loads(state_file.read_text(encoding="utf-8"))
    assert sorted(data["excluded"]) == sorted([str(a), str(b)])
    assert panel.model.item(a).excluded and not panel.model.item(a).trains
    panel.undo_stack.undo()
    assert json.loads(state_file.read_text(encoding="utf-8"))["excluded"] == []

    panel.select_path(a)
    panel.focus_picker.focus_changed.emit((0.25, 0.75))
    assert json.loads(state_file.read_text(encoding="utf-8"))["focus"] == {str(a): [0.25, 0.75]}
    assert panel.model.item(a).focus == (0.25, 0.75)

    assert panel.model.item(a).record.repeats == 3
    panel.folder_list.spin_for(folder.resolve()).setValue(7)
    assert json.loads(state_file.read_text(encoding="utf-8"))["repeats"] == {str(folder.resolve()): 7}
    assert all(it.record.repeats == 7 for it in panel.model.items)
    panel.undo_stack.undo()
    assert all(it.record.repeats == 3 for it in panel.model.items)

    # reopening the project restores the choices
    panel.set_excluded([b], True)
    panel.set_project([str(folder)], panel.project_dir, resolution=64)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 4, timeout=10000)
    assert panel.model.item(b).excluded and panel.model.item(a).focus == (0.25, 0.75)


def test_check_report_badges_and_filters(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "mixed", 3, captioned=lambda i: i == 0)
    (folder / "broken.png").write_text("not an image", encoding="utf-8")
    (folder / "zcopy.png").write_bytes((folder / "img000.png").read_bytes())
    (folder / "zcopy.txt").write_text("dog, red", encoding="utf-8")
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 5, timeout=10000)
    with qtbot.waitSignal(panel.check_finished, timeout=20000):
        panel.run_check()
    kinds = {(p.path.name, p.kind) for p in panel.report.problems}
    assert ("broken.png", "not-image") in kinds and ("zcopy.png", "duplicate") in kinds
    assert ("img001.png", "small") in kinds  # 32×24 < 64
    assert panel.model.item(folder / "broken.png").invalid
    assert panel.problem_report.model.rowCount() == len(panel.report.problems)
    qtbot.waitUntil(lambda: panel.thumbnails_ready() == 5, timeout=10000)
    assert panel.model.item(folder / "broken.png").thumb_error

    panel.filter_bar.status.setCurrentText("No caption")
    assert {p.name for p in panel.shown_paths()} == {"img001.png", "img002.png", "broken.png"}
    panel.filter_bar.status.setCurrentText("All images")
    panel._filter_tag("dog")
    assert [p.name for p in panel.shown_paths()] == ["zcopy.png"]
    panel._filter_tag(None)
    panel.proxy.set_text("pose")
    assert [p.name for p in panel.shown_paths()] == ["img000.png"]
    panel.proxy.set_text("")
    panel._sort("Caption length", True)
    assert panel.shown_paths()[0].name == "img000.png"  # "cat, pose 0" is the longest caption

    panel._refresh_frequencies()
    want = {"cat": 1, "pose 0": 1, "dog": 1, "red": 1}
    qtbot.waitUntil(lambda: dict(panel.tag_table.model.rows) == want, timeout=5000)
    assert panel.editor.chips.completer.model().stringList()[:1] in (["cat"], ["dog"], ["pose 0"], ["red"])


def test_autocaption_results_apply_as_one_undoable_edit(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "ac", 3, captioned=lambda i: i == 0)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10000)
    results = [CaptionResult(folder / f"img{i:03d}.png", "red thing") for i in range(3)]
    assert panel.apply_generated_captions(results, "only-empty") == 2
    assert _read(folder / "img000.png") == "cat, pose 0"
    assert _read(folder / "img001.png") == "red thing"
    panel.undo_stack.undo()
    assert _read(folder / "img001.png") is None  # the sidecar did not exist before: undo removes it
    assert panel.apply_generated_captions(results, "append") == 3
    assert _read(folder / "img000.png") == "cat, pose 0, red thing"


def test_dropped_image_files_are_copied_into_the_project(qtbot, panel: DatasetPanel, tmp_path: Path):
    src = _folder(tmp_path / "loose", 2)
    drop(panel, [src / "img000.png", src / "img001.png"])
    dest = panel.project_dir / "images" / "imported"
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=10000)
    assert sorted(p.name for p in dest.iterdir()) == ["img000.png", "img000.txt", "img001.png", "img001.txt"]
    assert panel.folder_strings() == ["images/imported"]
    assert all(it.path.parent == dest.resolve() for it in panel.model.items)


def test_many_qt_calls_do_not_free_none(qtbot, panel: DatasetPanel):
    """PySide6 6.12 on Python 3.11 drops a reference to None per void call (ui.pyside_fixes guards it)."""
    import sys

    from PySide6.QtWidgets import QLabel

    label = QLabel()
    for _ in range(30_000):
        label.setText("x")
    assert sys.getrefcount(None) > 1000


@pytest.mark.slow  # starts a worker process (imports torch)
def test_autocaption_dialog_runs_a_tagger_in_the_worker(qtbot, panel: DatasetPanel, tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.test_dataset_core import WD14_TAGS, _tiny_wd14
    from ui.dialogs.autocaption_dialog import AutoCaptionDialog

    model = _tiny_wd14(tmp_path / "wd14", WD14_TAGS)
    folder = tmp_path / "colours"
    folder.mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(folder / "red.png")
    Image.new("RGB", (40, 30), (0, 0, 255)).save(folder / "blue.png")
    (folder / "blue.txt").write_text("sky", encoding="utf-8")
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=10000)
    dialog = AutoCaptionDialog(panel.model.paths(), panel, settings=panel.settings)
    qtbot.addWidget(dialog)
    dialog.captions_ready.connect(panel.apply_generated_captions)
    dialog.model.setText(str(model))
    assert dialog.start_button.isEnabled() and "WD14" in dialog.kind.text()
    dialog.mode.setCurrentIndex(dialog.mode.findData("only-empty"))
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.active, timeout=400_000)  # the worker imports torch first
    assert "Done" in dialog.status.text(), dialog.status.text()
    assert dialog.progress.value() == 2
    assert _read(folder / "red.png") == "red thing"
    assert _read(folder / "blue.png") == "sky"  # only-empty leaves existing captions alone
    panel.undo_stack.undo()
    assert _read(folder / "red.png") is None
    dialog.reject()  # its own worker (no window around the panel) is shut down with it
    qtbot.waitUntil(lambda: not dialog.jobs.worker.running, timeout=30000)


def test_a_caption_that_cannot_be_saved_is_reported_and_the_rest_stay_undoable(qtbot, panel: DatasetPanel,
                                                                               tmp_path: Path, monkeypatch):
    from studio.dataset import captions as captions_module
    from studio.fileio import WriteError

    folder = _folder(tmp_path / "disk", 3)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10000)
    real_write = captions_module.atomic_write_text

    def failing(path, text):
        if Path(path).name == "img001.txt":
            raise WriteError(f"cannot write {path}: the disk is full", hint="free some space")
        real_write(path, text)

    monkeypatch.setattr(captions_module, "atomic_write_text", failing)
    assert panel.run_batch(TagOp("add", "new"), "all") == 3
    assert "could not be saved" in panel.banner.text()
    assert _read(folder / "img000.png") == "cat, pose 0, new"
    assert _read(folder / "img001.png") == "cat, pose 1"
    assert panel.model.item(folder / "img001.png").caption == "cat, pose 1"
    panel.undo_stack.undo()
    assert [_read(folder / f"img{i:03d}.png") for i in range(3)] == [f"cat, pose {i}" for i in range(3)]


def test_tag_chips_and_focus_clicks_write_through(qtbot, panel: DatasetPanel, tmp_path: Path):
    folder = _folder(tmp_path / "chips", 2)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.thumbnails_ready() == 2, timeout=10000)
    image = folder.resolve() / "img000.png"
    panel.select_path(image)
    panel.editor.set_mode("tags")
    assert panel.editor.chips.chip_texts() == ["cat", "pose 0"]
    panel.editor.chips.input.setText("tabby, cat")
    panel.editor.chips.input.returnPressed.emit()
    assert _read(image) == "cat, pose 0, tabby"  # "cat" was already there
    panel.editor.chips.remove("pose 0")
    assert _read(image) == "cat, tabby"
    assert panel.editor.text.toPlainText() == "cat, tabby"

    # a click on the picture sets the focus point; a drag draws a crop box (fractions of the image)
    picker = panel.focus_picker
    picker.resize(300, 300)
    rect = picker.image_rect()
    assert not rect.isNull()
    qtbot.mouseClick(picker, Qt.MouseButton.LeftButton, pos=rect.center())
    fx, fy = panel.model.item(image).focus
    assert abs(fx - 0.5) < 0.05 and abs(fy - 0.5) < 0.05
    start = rect.topLeft() + QPoint(2, 2)
    end = rect.center()
    qtbot.mousePress(picker, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(picker, end)
    qtbot.mouseRelease(picker, Qt.MouseButton.LeftButton, pos=end)
    left, top, right, bottom = panel.model.item(image).crop
    assert left < 0.05 and top < 0.05 and abs(right - 0.5) < 0.05 and abs(bottom - 0.5) < 0.05
    saved = json.loads((panel.project_dir / "dataset.json").read_text(encoding="utf-8"))
    assert str(image) in saved["crops"] and str(image) in saved["focus"]
    panel.undo_stack.undo()  # the crop
    assert panel.model.item(image).crop is None and panel.model.item(image).focus is not None


def test_bad_input_is_reported_not_fatal(qtbot, panel: DatasetPanel, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "gone"
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        panel.set_project([str(empty), str(missing)], panel.project_dir, resolution=64)
    assert panel.model.rowCount() == 0
    assert "not found" in panel.banner.text()
    panel.add_paths([tmp_path / "nothing-here.png"])  # neither a folder nor an image: ignored

    # images deleted or added by another program show up without reopening
    folder = _folder(tmp_path / "live", 3)
    panel.add_folders([folder])
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10000)
    (folder / "img002.png").unlink()
    Image.new("RGB", (8, 8)).save(folder / "new.png")
    qtbot.waitUntil(lambda: sorted(p.name for p in panel.model.paths()) == ["img000.png", "img001.png", "new.png"],
                    timeout=10000)
    # a caption rewritten in place (not replaced) is seen while its image is selected; not UTF-8 is read too
    panel.select_path(folder.resolve() / "img000.png")
    time.sleep(0.05)
    (folder / "img000.txt").write_bytes("café".encode("latin-1"))
    qtbot.waitUntil(lambda: panel.model.item(folder.resolve() / "img000.png").caption == "café", timeout=10000)
