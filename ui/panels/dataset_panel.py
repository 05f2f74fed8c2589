"""The Dataset panel: folders of images as a thumbnail grid, their captions, checks and choices.

It presents `studio.dataset` and does no file work itself: scanning, thumbnails (a thread pool with an
on-disk cache), checks, caption writes and dataset.json all live there. Every change a user makes is a
QUndoCommand on `undo_stack`, batch edits included, and undo writes the files back.

Embedding (MainWindow): `DatasetPanel(settings=...)`; call `set_project(cfg.dataset.folders, project_dir,
resolution=..., caption_extension=..., default_repeats=...)` when a project opens; listen to
`folders_changed(list[str])` to record the folders in the project; add `undo_stack` to the window's
QUndoGroup; call `shutdown()` when the window closes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QApplication, QCheckBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from studio.dataset.autocaption import CaptionResult, merge_caption
from studio.dataset.captions import CaptionStore
from studio.dataset.check import CheckReport
from studio.dataset.edits import ApplyResult, plan_batch, plan_edit
from studio.dataset.importer import import_copies, import_folder, sort_dropped
from studio.dataset.scan import ImageRecord, dataset_folders, repeats_for_folder, scan_folder
from studio.dataset.state import DatasetState, load_state, save_state
from studio.dataset.tags import TagOp, tag_frequencies
from studio.dataset.thumbnails import ThumbnailCache
from studio.errors import StudioError
from ui.background import run_in_background
from ui.models.check_runner import CheckRunner
from ui.models.dataset_commands import CaptionCommand, StateCommand
from ui.models.dataset_loader import DatasetLoader
from ui.models.dataset_model import DatasetFilterProxy, DatasetItem, DatasetModel
from ui.models.disk_watcher import DiskWatcher
from ui.widgets.caption_editor import CaptionEditor
from ui.widgets.dataset_filter_bar import DatasetFilterBar
from ui.widgets.dataset_grid import DatasetGrid
from ui.widgets.focus_picker import FocusPicker
from ui.widgets.folder_list import FolderList
from ui.widgets.problem_report import ProblemReport
from ui.widgets.status_banner import StatusBanner
from ui.widgets.tag_frequency_table import TagFrequencyTable

IMPORT_FOLDER = "images"  # where "import a copy" puts images, inside the project folder


class DatasetPanel(QWidget):
    folders_changed = Signal(list)  # list[str]: the folders as the project file should record them
    status_message = Signal(str)
    loaded = Signal(int)  # a scan finished and its images are in the grid (total rows)
    thumbnails_finished = Signal()  # every row has its thumbnail (or a reason why not)
    check_finished = Signal()

    def __init__(self, parent: QWidget | None = None, *, cache: ThumbnailCache | None = None,
                 settings: QSettings | None = None, workers: int | None = None, check_on_load: bool = True,
                 own_shortcuts: bool = True) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.cache = cache or ThumbnailCache()
        self.loader = DatasetLoader(self.cache, workers, self)
        self.checker = CheckRunner(self.cache.root / "checks", self)
        self.check_on_load = check_on_load
        self.project_dir: Path | None = None
        self.roots: list[Path] = []
        self.resolution = 512
        self.caption_extension = ".txt"
        self.default_repeats = 1
        self.worker_client = None  # the window's WorkerClient (MainWindow sets it): auto-captioning runs there
        self.store = CaptionStore(self.caption_extension)
        self.state = DatasetState()
        self.report: CheckReport | None = None
        self.undo_stack = QUndoStack(self)
        self._generation = 0
        self._state_damaged = False
        self._written_at: dict[Path, float] = {}  # when this panel last wrote each caption (see _rescanned)

        self.model = DatasetModel(self)
        self.model.request_thumbnail = self._request_urgent
        self.proxy = DatasetFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build(own_shortcuts)
        self._wire()
        self.setAcceptDrops(True)

    # ------------------------------------------------------------------------------------------------
    # construction
    def _build(self, own_shortcuts: bool) -> None:
        side = int(self.settings.value("datasetPanel/thumbSize", 128))
        self.toolbar = QToolBar()
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.add_folder_action = self._act("Add folder…", "Reference a folder of images in place", self.choose_folder)
        self.import_action = self._act("Import a copy…", "Copy a folder of images into the project folder",
                                       self.choose_import)
        self.toolbar.addSeparator()
        self.batch_action = self._act("Batch edit…", "Edit the captions of many images at once",
                                      lambda: self.open_batch_dialog())
        self.trigger_action = self._act("Trigger word first…", "Put a trigger word at the start of captions",
                                        lambda: self.open_batch_dialog("trigger_first"))
        self.autocaption_action = self._act("Auto-caption…", "Caption images with a model on this computer",
                                            self.open_autocaption)
        self.check_action = self._act("Check images", "Look for broken, unusual and duplicate files",
                                      self.run_check)
        self.toolbar.addSeparator()
        self.exclude_action = self._act("Exclude", "Leave the selected images out of training (E)",
                                        self._toggle_exclude)
        self.exclude_action.setCheckable(True)
        self.exclude_action.setShortcut(QKeySequence("E"))
        self.exclude_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.toolbar.addSeparator()
        # fixed labels (the step to undo is in the tooltip), so the toolbar does not jump around
        self.undo_action = QAction("Undo", self)
        self.redo_action = QAction("Redo", self)
        self.undo_action.triggered.connect(self.undo_stack.undo)
        self.redo_action.triggered.connect(self.undo_stack.redo)
        self.undo_stack.canUndoChanged.connect(self.undo_action.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_action.setEnabled)
        self.undo_stack.undoTextChanged.connect(lambda t: self.undo_action.setToolTip(f"Undo {t}" if t else "Undo"))
        self.undo_stack.redoTextChanged.connect(lambda t: self.redo_action.setToolTip(f"Redo {t}" if t else "Redo"))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        if own_shortcuts:
            for action, key in ((self.undo_action, QKeySequence.StandardKey.Undo),
                                (self.redo_action, QKeySequence.StandardKey.Redo)):
                action.setShortcut(QKeySequence(key))
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(action)
        self.toolbar.addAction(self.undo_action)
        self.toolbar.addAction(self.redo_action)
        self.addAction(self.exclude_action)

        self.banner = StatusBanner()
        self.filter_bar = DatasetFilterBar(side=side)
        self.grid = DatasetGrid(side=side)
        self.grid.setModel(self.proxy)
        self.model.set_thumb_side(side)
        self.empty_hint = QLabel("Drop folders of images here, or use Add folder…\n"
                                 "Folders are used where they are; captions are the .txt files beside the images.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)  # unwrapped, it held the window wider than 1024 px
        self.empty_hint.setStyleSheet("color: palette(placeholder-text); font-size: 14px; padding: 40px;")
        self.footer = QLabel()

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter_bar)
        lv.addWidget(self.empty_hint)
        lv.addWidget(self.grid, 1)
        lv.addWidget(self.footer)

        self.editor = CaptionEditor()
        self.exclude_box = QCheckBox("Exclude from training")
        self.exclude_box.setTristate(False)
        self.focus_picker = FocusPicker()
        caption_tab = QWidget()
        cv = QVBoxLayout(caption_tab)
        cv.addWidget(self.editor, 2)
        row = QHBoxLayout()
        row.addWidget(self.exclude_box)
        row.addStretch(1)
        cv.addLayout(row)
        self.crop_hint = QLabel("Training crop: click for a focus point, drag for a crop box, right-click to clear")
        self.crop_hint.setWordWrap(True)
        cv.addWidget(self.crop_hint)
        cv.addWidget(self.focus_picker, 3)
        self.tag_table = TagFrequencyTable()
        self.problem_report = ProblemReport()
        self.folder_list = FolderList()
        self.tabs = QTabWidget()
        self.tabs.addTab(caption_tab, "Caption")
        self.tabs.addTab(self.tag_table, "Tags")
        self.tabs.addTab(self.problem_report, "Problems")
        self.tabs.addTab(self.folder_list, "Folders")
        # all four tab titles readable, without scroll arrows, however narrow the splitter leaves this side
        self.tabs.setMinimumWidth(self.tabs.tabBar().sizeHint().width() + 2 * self.tabs.fontMetrics().height())

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

        self.watcher = DiskWatcher(self)
        self._freq_timer = self._single_shot(300, self._refresh_frequencies)
        self._footer_timer = self._single_shot(250, self._update_footer)
        self._update_empty()

    def _act(self, text: str, tip: str, slot) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        return action

    def _single_shot(self, ms: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _wire(self) -> None:
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.zoom_requested.connect(self.filter_bar.step_zoom)
        self.filter_bar.zoom_changed.connect(self.set_thumb_side)
        self.filter_bar.text_changed.connect(self._filter_text)
        self.filter_bar.status_changed.connect(self._filter_status)
        self.filter_bar.sort_changed.connect(self._sort)
        self.filter_bar.tag_cleared.connect(lambda: self._filter_tag(None))
        self.editor.caption_committed.connect(self.set_caption)
        self.exclude_box.clicked.connect(lambda on: self.set_excluded(self.selected_paths(), on))
        self.focus_picker.focus_changed.connect(self._focus_picked)
        self.focus_picker.crop_changed.connect(self._crop_picked)
        self.tag_table.filter_requested.connect(self._filter_tag)
        self.tag_table.remove_requested.connect(lambda t: self.run_batch(TagOp("remove", t), "all"))
        self.tag_table.first_requested.connect(lambda t: self.run_batch(TagOp("trigger_first", t), "all"))
        self.tag_table.rename_requested.connect(self._rename_tag)
        self.problem_report.image_chosen.connect(self.select_path)
        self.folder_list.repeats_changed.connect(self.set_repeats)
        self.folder_list.remove_requested.connect(self.remove_folder)
        self.folder_list.folder_chosen.connect(lambda f: self.status_message.emit(str(f)))
        self.loader.chunk_ready.connect(self._add_chunk)
        self.loader.scan_finished.connect(self._scan_finished)
        self.loader.thumbnails_ready.connect(self._thumbnails_arrived)
        self.loader.idle.connect(self._loader_idle)
        self.checker.progress.connect(self.problem_report.set_progress)
        self.checker.finished.connect(self._checked)
        self.checker.failed.connect(lambda message: self.banner.show_message("error", message))
        self.watcher.folders_changed.connect(self._refresh_changed_folders)
        self.proxy.modelReset.connect(self._footer_timer.start)
        self.proxy.rowsInserted.connect(self._footer_timer.start)
        self.proxy.layoutChanged.connect(self._footer_timer.start)

    # ------------------------------------------------------------------------------------------------
    # project and folders
    def set_project(self, folders: Sequence[str], project_dir: Path | None, *, resolution: int = 512,
                    caption_extension: str = ".txt", default_repeats: int = 1) -> None:
        """Show the dataset of a project (folders as written in its file, relative to `project_dir`)."""
        self.editor.flush()
        self.project_dir = Path(project_dir).resolve() if project_dir else None
        self.resolution = resolution
        self.default_repeats = default_repeats
        if caption_extension != self.caption_extension:
            self.caption_extension = caption_extension
        self.store = CaptionStore(self.caption_extension)
        self.undo_stack.clear()
        self.banner.hide()
        self.state = DatasetState()
        if self.project_dir is not None:
            try:
                self.state = load_state(self.project_dir)
            except StudioError as exc:
                self._state_damaged = True
                self.banner.show_message("error", str(exc), exc.hint)
        self.roots = []
        for f in folders:
            p = Path(f).expanduser()
            if not p.is_absolute() and self.project_dir is not None:
                p = self.project_dir / p
            p = p.resolve()
            if p not in self.roots:
                self.roots.append(p)
        self.report = None
        self.checker.cancel()
        self.problem_report.set_problems([], 0, 0)
        self.model.set_items([])
        self.loader.reset()
        self.watcher.clear()
        self._load(list(self.roots), replace=True)

    def set_resolution(self, resolution: int) -> None:
        """The training resolution changed: images smaller than it are reported again."""
        if resolution != self.resolution:
            self.resolution = resolution
            self.run_check()

    def folder_strings(self) -> list[str]:
        out = []
        for root in self.roots:
            if self.project_dir is not None:
                try:
                    out.append(root.relative_to(self.project_dir).as_posix() or ".")
                    continue
                except ValueError:
                    pass
            out.append(str(root))
        return out

    def choose_folder(self) -> None:
        start = self.settings.value("datasetPanel/lastFolder", str(self.project_dir or Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Add a folder of images", str(start))
        if path:
            self.settings.setValue("datasetPanel/lastFolder", path)
            self.add_folders([Path(path)])

    def choose_import(self) -> None:
        start = self.settings.value("datasetPanel/lastFolder", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Import a copy of a folder of images", str(start))
        if path:
            self.import_copy([Path(path)])

    def add_paths(self, paths: Sequence[str | Path]) -> None:
        """Dropped or chosen paths: folders are referenced in place; single images are copied into the
        project (or, without a project folder, their folder is added)."""
        dropped = sort_dropped(paths)
        if dropped.folders:
            self.add_folders(list(dropped.folders))
        if dropped.images:
            if self.project_dir is not None:
                dest = self.project_dir / IMPORT_FOLDER / "imported"
                run_in_background(import_copies, list(dropped.images), dest, self.caption_extension,
                                  on_done=lambda _: self._imported(dest, len(dropped.images)),
                                  on_error=self._background_error)
            else:
                self.add_folders(sorted({p.parent for p in dropped.images}))
        if dropped.ignored and not dropped.folders and not dropped.images:
            self.status_message.emit("Nothing to add: drop folders or image files")

    def import_copy(self, folders: Sequence[Path]) -> None:
        dest = (self.project_dir / IMPORT_FOLDER) if self.project_dir is not None else None
        if dest is None:
            chosen = QFileDialog.getExistingDirectory(self, "Where should the copies go?", str(Path.home()))
            if not chosen:
                return
            dest = Path(chosen)
        for folder in folders:
            run_in_background(import_folder, Path(folder), dest, self.caption_extension,
                              on_done=lambda target: self.add_folders([target]), on_error=self._background_error)

    def _imported(self, dest: Path, n: int) -> None:
        self.status_message.emit(f"Copied {n} image{'s' if n != 1 else ''} into {dest}")
        if dest.resolve() in self.roots:
            self._rescan_folder(dest.resolve())
        else:
            self.add_folders([dest])

    def add_folders(self, folders: Sequence[Path]) -> None:
        new = []
        for f in folders:
            p = Path(os.path.normpath(Path(f).expanduser().resolve()))
            if p not in self.roots and p not in new:
                new.append(p)
        if not new:
            return
        self.roots.extend(new)
        self.folders_changed.emit(self.folder_strings())
        self._load(new, replace=False)

    def remove_folder(self, folder: Path) -> None:
        folder = Path(folder)
        if folder not in self.roots:
            return
        self.roots.remove(folder)
        self.model.remove_folder(folder)
        self.watcher.unwatch_under(folder)
        self.folders_changed.emit(self.folder_strings())
        self._refresh_folder_list()
        self._freq_timer.start()
        self._update_empty()

    def _load(self, roots: list[Path], *, replace: bool) -> None:
        """Scan `roots` on a thread; chunks of records reach the grid as they are read."""
        if replace:
            self._generation += 1
        self.loader.scan(roots, caption_extension=self.caption_extension, default_repeats=self.default_repeats,
                         replace=replace)
        self.footer.setText("Reading folders…")

    def _add_chunk(self, records: list[ImageRecord], problems: list) -> None:
        for problem in problems:
            if problem.kind == "missing":
                self.banner.show_message("warning", f"Folder not found: {problem.path}",
                                         "Remove it in the Folders tab, or put the images back.")
            else:
                self.banner.show_message("error", problem.message)
        if not records:
            return
        self.model.append_items([self._item(rec) for rec in records])
        # background thumbnails wait for the scan to finish: both are mostly Python, and running them
        # side by side only makes each wait for the other's turn at the interpreter lock
        if self.empty_hint.isVisible():
            self._update_empty()

    def _scan_finished(self, roots: list[Path], error: BaseException | None) -> None:
        if error is not None:
            self._background_error(error)
        for root in roots:
            self.watcher.watch_folders(folder for folder, _ in dataset_folders(root))
        self._refresh_folder_list()
        self._freq_timer.start()
        self._update_empty()
        self._footer_timer.start()
        if not self.loader.scanning:
            self.loader.request_all(it.record for it in self.model.items if not (it.thumb or it.thumb_error))
            self.loaded.emit(self.model.rowCount())

    def _item(self, rec: ImageRecord) -> DatasetItem:
        caption = rec.caption if rec.has_caption_file else None
        state = self.state
        if not (state.excluded or state.focus or state.crops or state.repeats):
            return DatasetItem(record=rec, caption=caption)  # the usual case: 10,000 lookups saved
        repeats = state.repeats.get(rec.folder, rec.repeats)
        if repeats != rec.repeats:
            from dataclasses import replace

            rec = replace(rec, repeats=repeats)
        return DatasetItem(record=rec, caption=caption, excluded=rec.path in state.excluded,
                           focus=state.focus.get(rec.path), crop=state.crops.get(rec.path))

    def _background_error(self, exc: BaseException) -> None:
        hint = getattr(exc, "hint", "")
        self.banner.show_message("error", str(exc) or type(exc).__name__, hint)

    def _update_empty(self) -> None:
        empty = self.model.rowCount() == 0 and not self.loader.scanning
        self.empty_hint.setVisible(empty and not self.roots)

    # ------------------------------------------------------------------------------------------------
    # thumbnails
    def _request_urgent(self, item: DatasetItem) -> None:
        self.loader.request(item.record, urgent=True)

    def _thumbnails_arrived(self, results: list) -> None:
        self.model.set_thumbnails(results)
        self._footer_timer.start()
        current = self.editor.path
        if current is not None and self.focus_picker.image_rect().isNull() and any(p == current for p, _ in results):
            item = self.model.item(current)
            self.focus_picker.show_image(self._big_pixmap(item), item.focus, item.crop)

    def _loader_idle(self) -> None:
        """Every thumbnail is in: say so, and check the images (which decodes them all) only now."""
        self._update_footer()
        self.thumbnails_finished.emit()
        if self.check_on_load:
            self.run_check()

    def is_loading(self) -> bool:
        """A folder scan is still under way (rows are still being added)."""
        return self.loader.scanning

    def thumbnails_ready(self) -> int:
        """Rows whose thumbnail is in memory (or known to be impossible)."""
        return self.model.thumbs_ready

    def set_thumb_side(self, side: int) -> None:
        self.grid.set_side(side)
        self.model.set_thumb_side(self.grid.delegate.side)
        self.settings.setValue("datasetPanel/thumbSize", self.grid.delegate.side)
        self.grid.viewport().update()

    # ------------------------------------------------------------------------------------------------
    # selection and the caption editor
    def selected_paths(self) -> list[Path]:
        rows = sorted(self.proxy.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.model.items[r].path for r in rows if 0 <= r < len(self.model.items)]

    def shown_paths(self) -> list[Path]:
        return [self.model.items[self.proxy.mapToSource(self.proxy.index(r, 0)).row()].path
                for r in range(self.proxy.rowCount())]

    def select_path(self, path: Path) -> None:
        row = self.model.row_of(Path(path))
        if row < 0:
            return
        index = self.proxy.mapFromSource(self.model.index(row))
        if not index.isValid():  # hidden by the filter: show everything
            self.filter_bar.status.setCurrentIndex(0)
            self.filter_bar.text.clear()
            self._filter_text("")
            self._filter_tag(None)
            index = self.proxy.mapFromSource(self.model.index(row))
        self.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.grid.scrollTo(index)
        self.tabs.setCurrentIndex(0)

    def _selection_changed(self, *_args) -> None:
        self.editor.flush()
        paths = self.selected_paths()
        self._footer_timer.start()
        if len(paths) == 1:
            item = self.model.item(paths[0])
            self.editor.show_caption(item.path, item.caption)
            self.watcher.watch_file(self.store.sidecar(item.path))
            self.focus_picker.show_image(self._big_pixmap(item), item.focus, item.crop)
        else:
            self.watcher.watch_file(None)
            self.focus_picker.show_image(None)
            if paths:
                self.editor.show_multiple(len(paths))
            else:
                self.editor.show_caption(None, None)
        items = [self.model.item(p) for p in paths]
        self.exclude_box.setEnabled(bool(items))
        self.exclude_box.setChecked(bool(items) and all(it.excluded for it in items))
        self.exclude_action.setChecked(self.exclude_box.isChecked())

    def _big_pixmap(self, item: DatasetItem):
        from PySide6.QtGui import QPixmap

        pix = QPixmap()
        if item.thumb:
            pix.loadFromData(item.thumb, "JPEG")
        return pix

    def set_caption(self, path: Path, text: str) -> None:
        """One image's caption, as typed: an undoable edit (consecutive typing in one image merges)."""
        item = self.model.item(Path(path))
        if item is None:
            return
        edit = plan_edit(f"Edit caption of {item.path.name}", {item.path: (item.caption, text)})
        if edit.changes:
            self.undo_stack.push(CaptionCommand(self.store, edit, self._apply_result, typing=True,
                                                 on_error=self._write_failed))

    def _apply_result(self, result: ApplyResult) -> None:
        """After any caption write or undo: show what is on disk now, and say what was reloaded."""
        now = time.monotonic()
        for path in result.written:
            self._written_at[path] = now
        self.model.set_captions(result.captions)
        current = self.editor.path
        if current is not None and current in result.captions:
            disk = result.captions[current] or ""
            if current in result.reloaded:
                self.editor.show_caption(current, disk, note=f"{current.name} — changed by another program; "
                                                             "reloaded")
            elif self.editor.current_text().strip() != disk.strip():
                self.editor.show_caption(current, disk)
        if result.reloaded:
            names = ", ".join(p.name for p in list(result.reloaded)[:3]) + (" …" if len(result.reloaded) > 3 else "")
            self.banner.show_message("warning", f"{len(result.reloaded)} caption file(s) had been changed by another "
                                                f"program and were reloaded, not overwritten: {names}",
                                     "Make the edit again if you still want it.")
        self._freq_timer.start()

    def _write_failed(self, exc: Exception) -> None:
        self.banner.show_message("error", str(exc), getattr(exc, "hint", ""))

    # ------------------------------------------------------------------------------------------------
    # batch edits
    def scope_paths(self, scope: str) -> list[Path]:
        if scope == "selection":
            return self.selected_paths()
        if scope == "shown":
            return self.shown_paths()
        return self.model.paths()

    def run_batch(self, op: TagOp, scope: str = "selection", *, by_frequency: bool = False) -> int:
        """Apply `op` to the captions in `scope`; returns how many files changed (0: nothing pushed)."""
        self.editor.flush()
        paths = self.scope_paths(scope)
        captions = {p: self.model.item(p).caption for p in paths}
        freq = tag_frequencies(it.caption for it in self.model.items) if by_frequency else None
        edit = plan_batch(captions, op, freq)
        if not edit.changes:
            self.status_message.emit(f"{op.describe()}: no caption changes")
            return 0
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.undo_stack.push(CaptionCommand(self.store, edit, self._apply_result,
                                                 on_error=self._write_failed))
        finally:
            QApplication.restoreOverrideCursor()
        self.status_message.emit(edit.description)
        return len(edit.changes)

    def open_batch_dialog(self, operation: str = "trigger_first", tag: str = "") -> None:
        from ui.dialogs.batch_edit_dialog import BatchEditDialog

        self.editor.flush()
        selected = len(self.selected_paths())
        sizes = {"selection": selected, "shown": self.proxy.rowCount(), "all": self.model.rowCount()}

        def count(op: TagOp, scope: str) -> int:
            return len(plan_batch({p: self.model.item(p).caption for p in self.scope_paths(scope)}, op).changes)

        dialog = BatchEditDialog(self, operation=operation, tag=tag, scope="selection" if selected > 1 else "all",
                                 tags=self.tag_table.model.tags_by_frequency(), scope_sizes=sizes,
                                 count_changes=count)
        if dialog.exec():
            self.run_batch(dialog.operation_result(), dialog.chosen_scope, by_frequency=dialog.sort_by_frequency)

    def _rename_tag(self, tag: str) -> None:
        new, ok = QInputDialog.getText(self, "Rename tag", f"Rename “{tag}” in every caption to:", text=tag)
        if ok and new.strip() and new.strip() != tag:
            self.run_batch(TagOp("rename", tag, new.strip()), "all")

    # ------------------------------------------------------------------------------------------------
    # auto-caption
    def open_autocaption(self) -> None:
        from ui.dialogs.autocaption_dialog import AutoCaptionDialog

        self.editor.flush()
        images = self.selected_paths() or self.shown_paths()
        dialog = AutoCaptionDialog(images, self, settings=self.settings, client=self.worker_client,
                                   caption_extension=self.caption_extension)
        dialog.captions_ready.connect(self.apply_generated_captions)
        dialog.exec()

    def apply_generated_captions(self, results: list[CaptionResult], mode: str) -> int:
        changes = {}
        for res in results:
            item = self.model.item(res.path)
            if item is None or not res.caption:
                continue
            if res.written:  # the worker wrote it: what is on disk now is known, so the edit records it
                self.store.remember(res.path)
            new = merge_caption(item.caption, res.caption, mode)  # type: ignore[arg-type]
            if new is not None:
                changes[item.path] = (item.caption, new)
        edit = plan_edit(f"Auto-caption ({len(changes)} images)", changes)
        if edit.changes:
            self.undo_stack.push(CaptionCommand(self.store, edit, self._apply_result,
                                                 on_error=self._write_failed))
        self.status_message.emit(f"Auto-caption: {len(edit.changes)} caption(s) written")
        return len(edit.changes)

    # ------------------------------------------------------------------------------------------------
    # exclude flags, focus points, crops and repeats (dataset.json)
    def set_excluded(self, paths: Sequence[Path], excluded: bool) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        after = self.state.with_excluded(paths, excluded)
        if after != self.state:
            n = len(paths)
            text = f"{'Exclude' if excluded else 'Include'} {n} image{'s' if n != 1 else ''}"
            self.undo_stack.push(StateCommand(text, self.state, after, self._apply_state))

    def _toggle_exclude(self) -> None:
        paths = self.selected_paths()
        items = [self.model.item(p) for p in paths]
        self.set_excluded(paths, not all(it.excluded for it in items))

    def _focus_picked(self, point) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            after = self.state.with_focus(paths[0], point)
            if after != self.state:
                self.undo_stack.push(StateCommand(f"Focus point of {paths[0].name}", self.state, after,
                                                  self._apply_state))

    def _crop_picked(self, box) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            after = self.state.with_crop(paths[0], box)
            if after != self.state:
                self.undo_stack.push(StateCommand(f"Crop of {paths[0].name}", self.state, after,
                                                  self._apply_state))

    def set_repeats(self, folder: Path, repeats: int) -> None:
        folder = Path(folder)
        from_name = repeats_for_folder(folder, self.default_repeats)[0]
        after = self.state.with_repeats(folder, None if repeats == from_name else repeats)
        if after != self.state:
            self.undo_stack.push(StateCommand(f"Repeats of {folder.name}: {repeats}", self.state, after,
                                              self._apply_state))

    def _apply_state(self, state: DatasetState) -> None:
        self.state = state
        self.model.set_excluded(state.excluded)
        self.model.set_focus(state.focus, state.crops)
        folders = {it.record.folder for it in self.model.items}
        for folder in folders:
            self.model.set_repeats(folder, state.repeats.get(folder, repeats_for_folder(folder,
                                                                                        self.default_repeats)[0]))
        if self.project_dir is not None:
            try:
                if self._state_damaged:
                    damaged = self.project_dir / "dataset.json"
                    if damaged.exists():
                        damaged.replace(damaged.with_suffix(".json.damaged"))
                    self._state_damaged = False
                save_state(state, self.project_dir)
            except (StudioError, OSError) as exc:
                self.banner.show_message("error", f"Cannot save the dataset choices: {exc}",
                                         getattr(exc, "hint", ""))
        self._refresh_folder_list()
        paths = self.selected_paths()
        if len(paths) == 1:
            item = self.model.item(paths[0])
            self.focus_picker.focus, self.focus_picker.crop = item.focus, item.crop
            self.focus_picker.update()
        items = [self.model.item(p) for p in paths]
        self.exclude_box.setChecked(bool(items) and all(it.excluded for it in items))
        self.exclude_action.setChecked(self.exclude_box.isChecked())
        self._footer_timer.start()

    # ------------------------------------------------------------------------------------------------
    # image check
    def run_check(self) -> None:
        """Check every image in the background (cached by path, size and mtime); badges update at the end."""
        self.checker.start([it.record for it in self.model.items], self.resolution)

    def _checked(self, report: CheckReport) -> None:
        self.report = report
        by_path: dict[Path, list] = {}
        for p in report.problems:
            by_path.setdefault(p.path, []).append(p)
        self.model.set_problems({k: tuple(v) for k, v in by_path.items()}, replace_all=True)
        self.problem_report.set_problems(list(report.problems), len(report.checks), len(self.model.items))
        self._footer_timer.start()
        self.check_finished.emit()

    # ------------------------------------------------------------------------------------------------
    # files changed by other programs
    def _refresh_changed_folders(self, folders: list[Path]) -> None:
        for folder in folders:
            self._rescan_folder(folder)

    def _rescan_folder(self, folder: Path) -> None:
        repeats = next((it.record.repeats for it in self.model.items if it.record.folder == folder),
                       repeats_for_folder(folder, self.default_repeats)[0])
        generation, started = self._generation, time.monotonic()
        run_in_background(partial(scan_folder, folder, repeats=repeats, caption_extension=self.caption_extension),
                          on_done=lambda recs: self._rescanned(folder, recs, generation, started),
                          on_error=lambda exc: None)  # a folder that vanished is reported on next open

    def _rescanned(self, folder: Path, records: list[ImageRecord], generation: int, started: float) -> None:
        if generation != self._generation:
            return
        on_disk = {r.path: r for r in records}
        mine = [it for it in self.model.items if it.record.folder == folder]
        changed = {}
        for it in mine:
            rec = on_disk.get(it.path)
            if rec is None or self._written_at.get(it.path, 0.0) >= started:
                continue  # gone, or written here while the scan read the old text: ours is newer
            disk = rec.caption if rec.has_caption_file else None
            if disk != it.caption:
                changed[it.path] = disk
                self.store.forget(it.path)
        if changed:
            self.model.set_captions(changed)
            current = self.editor.path
            if current in changed:
                self.editor.show_caption(current, changed[current],
                                         note=f"{current.name} — changed by another program; reloaded")
            self.status_message.emit(f"Reloaded {len(changed)} caption(s) changed by another program")
            self._freq_timer.start()
        known = {it.path for it in mine}
        fresh = [self._item(r) for r in records if r.path not in known]
        gone = known - set(on_disk)
        if gone:
            self.model.set_items([it for it in self.model.items if it.path not in gone])
        if fresh:
            self.model.append_items(fresh)
            self.loader.request_all(it.record for it in fresh)
        if fresh or gone:
            self._refresh_folder_list()
            self._freq_timer.start()

    # ------------------------------------------------------------------------------------------------
    # filters, frequencies, footer
    def _filter_text(self, text: str) -> None:
        self.proxy.set_text(text)
        self._footer_timer.start()

    def _filter_status(self, status: str) -> None:
        self.proxy.set_status(status)
        self._footer_timer.start()

    def _filter_tag(self, tag: str | None) -> None:
        self.proxy.set_tags([tag] if tag else [])
        if tag:
            self.filter_bar.show_tag(tag)
        else:
            self.filter_bar.tag.hide()
        self._footer_timer.start()

    def _sort(self, key: str, descending: bool) -> None:
        self.proxy.set_sort_key(key, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder)

    def _refresh_frequencies(self) -> None:
        """Count tags on a pool thread (tens of milliseconds at 10,000 captions) and show the result."""
        captions = [it.caption for it in self.model.items]
        generation = self._generation
        run_in_background(tag_frequencies, captions,
                          on_done=lambda counts: self._show_frequencies(counts, generation))

    def _show_frequencies(self, counts, generation: int) -> None:
        if generation != self._generation:
            return
        self.tag_table.set_frequencies(counts)
        self.editor.set_completions(self.tag_table.model.tags_by_frequency())

    def _refresh_folder_list(self) -> None:
        counts: dict[Path, int] = {}
        repeats: dict[Path, int] = {}
        for it in self.model.items:
            counts[it.record.folder] = counts.get(it.record.folder, 0) + 1
            repeats[it.record.folder] = it.record.repeats
        rows = []
        for root in self.roots:
            for folder, from_name in dataset_folders(root, self.default_repeats):
                if folder == root or folder in counts:
                    rows.append((folder, folder == root, counts.get(folder, 0),
                                 repeats.get(folder, self.state.repeats.get(folder, from_name))))
        self.folder_list.set_folders(rows)

    def _update_footer(self) -> None:
        total = self.model.rowCount()
        if total == 0:
            self.footer.setText("Reading folders…" if self.loader.scanning else "No images")
            return
        training = sum(1 for it in self.model.items if it.trains)
        uncaptioned = sum(1 for it in self.model.items if not it.caption)
        selected = len(self.grid.selectionModel().selectedIndexes())
        parts = [f"{total} images", f"{self.proxy.rowCount()} shown", f"{selected} selected",
                 f"{training} for training", f"{uncaptioned} without caption"]
        ready = self.thumbnails_ready()
        if ready < total:
            parts.append(f"thumbnails {ready}/{total}")
        self.footer.setText(" · ".join(parts))
        self._update_empty()

    # ------------------------------------------------------------------------------------------------
    # drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    # ------------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the thumbnail threads and timers (the window is closing). Pending typing is saved first."""
        self.editor.flush()
        self.checker.cancel()
        self.loader.shutdown()
