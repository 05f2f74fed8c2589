"""The Dataset panel: folders of images as a thumbnail grid, their captions, checks and choices.

It presents `studio.dataset` and does no file work itself: scanning, thumbnails (a thread pool with an
on-disk cache), checks, caption writes and dataset.json all live there. Every change a user makes is a
QUndoCommand on `undo_stack`, batch edits included, and undo writes the files back. The widgets are built
here, `ui.panels.dataset.wiring` connects every signal, and the mixins in `ui.panels.dataset` do the work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QCheckBox, QLabel, QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget

from studio.dataset.captions import CaptionStore
from studio.dataset.check import CheckReport
from studio.dataset.state import DatasetState
from studio.dataset.thumbnails import ThumbnailCache
from ui.layout import fill, flat, row
from ui.models.check_runner import CheckRunner
from ui.models.dataset_loader import DatasetLoader
from ui.models.dataset_model import DatasetFilterProxy, DatasetModel
from ui.models.disk_watcher import DiskWatcher
from ui.panels.dataset import wiring
from ui.panels.dataset.counters import CountersMixin
from ui.panels.dataset.edits import EditsMixin
from ui.panels.dataset.folders import FoldersMixin
from ui.panels.dataset.grid import GridMixin
from ui.widgets.caption_editor import CaptionEditor
from ui.widgets.dataset_filter_bar import DatasetFilterBar
from ui.widgets.dataset_grid import DatasetGrid
from ui.widgets.focus_picker import FocusPicker
from ui.widgets.folder_list import FolderList
from ui.widgets.problem_report import ProblemReport
from ui.widgets.status_banner import StatusBanner
from ui.widgets.tag_frequency_table import TagFrequencyTable


class DatasetPanel(FoldersMixin, GridMixin, EditsMixin, CountersMixin, QWidget):
    folders_changed = Signal(list)  # list[str]: the folders as the project file should record them
    status_message = Signal(str)
    model_dropped = Signal(str)  # a base model was dropped here: for the Train panel's model field
    loras_dropped = Signal(list)  # list[str]: LoRA files dropped here, for the mixer
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
        self.jobs = None  # the window's JobManager (MainWindow sets it): auto-captioning is one of its jobs
        self.store = CaptionStore(self.caption_extension)
        self.state = DatasetState()
        self.report: CheckReport | None = None
        self.drop_note = ""  # what the last drop did, in one line (also sent as a status message)
        self.undo_stack = QUndoStack(self)
        self._generation = 0
        self._state_damaged = False
        self._written_at: dict[Path, float] = {}  # when this panel last wrote each caption (see _rescanned)

        self.model = DatasetModel(self)
        self.model.request_thumbnail = lambda item: self.loader.request(item.record)  # a row being painted
        self.proxy = DatasetFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build(own_shortcuts)
        wiring.connect(self)
        self._update_empty()
        self.setAcceptDrops(True)

    def shutdown(self) -> None:
        """Stop the thumbnail threads and timers (the window is closing). Pending typing is saved first."""
        self.editor.flush()
        self.checker.cancel()
        self.loader.shutdown()

    def _build(self, own_shortcuts: bool) -> None:
        side = int(self.settings.value("datasetPanel/thumbSize", 128))
        self._build_toolbar(own_shortcuts)
        self.banner = StatusBanner()
        self.filter_bar = DatasetFilterBar(side=side)
        self.grid = DatasetGrid(side=side)
        self.grid.setModel(self.proxy)
        self.model.set_thumb_side(side)
        self.footer = QLabel()
        left = QWidget()
        flat(fill(QVBoxLayout(left), self.filter_bar, (self.grid, 1), self.footer))

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self._build_tabs())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        fill(QVBoxLayout(self), self.toolbar, self.banner, (self.splitter, 1)).setContentsMargins(4, 4, 4, 4)

        self.watcher = DiskWatcher(self)
        self._freq_timer = QTimer(self, singleShot=True, interval=300)
        self._footer_timer = QTimer(self, singleShot=True, interval=250)

    def _build_toolbar(self, own_shortcuts: bool) -> None:
        self.toolbar = QToolBar(toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.add_folder_action = self._act("Add folder…", "Reference a folder of images in place")
        self.import_action = self._act("Import a copy…", "Copy a folder of images into the project folder")
        self.toolbar.addSeparator()
        self.batch_action = self._act("Batch edit…", "Edit the captions of many images at once")
        self.trigger_action = self._act("Trigger word first…", "Put a trigger word at the start of captions")
        self.autocaption_action = self._act("Auto-caption…", "Caption images with a model on this computer")
        self.check_action = self._act("Check images", "Look for broken, unusual and duplicate files")
        self.toolbar.addSeparator()
        self.exclude_action = self._act("Exclude", "Leave the selected images out of training (E)",
                                        checkable=True, shortcut=QKeySequence("E"),
                                        shortcutContext=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.toolbar.addSeparator()
        # fixed labels (the step to undo is in the tooltip), so the toolbar does not jump around
        self.undo_action = QAction("Undo", self, enabled=False)
        self.redo_action = QAction("Redo", self, enabled=False)
        if own_shortcuts:
            for action, key in ((self.undo_action, QKeySequence.StandardKey.Undo),
                                (self.redo_action, QKeySequence.StandardKey.Redo)):
                action.setShortcut(QKeySequence(key))
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(action)
        self.toolbar.addActions([self.undo_action, self.redo_action])
        self.addAction(self.exclude_action)

    def _build_tabs(self) -> QTabWidget:
        self.editor = CaptionEditor()
        self.exclude_box = QCheckBox("Exclude from training")
        self.focus_picker = FocusPicker()
        hint = "Training crop: click for a focus point, drag for a crop box, right-click to clear"
        self.crop_hint = QLabel(hint, wordWrap=True)
        caption_tab = QWidget()
        fill(QVBoxLayout(caption_tab), (self.editor, 2), row(self.exclude_box, None), self.crop_hint,
             (self.focus_picker, 3))
        self.tag_table = TagFrequencyTable()
        self.problem_report = ProblemReport()
        self.folder_list = FolderList()
        self.tabs = QTabWidget()
        for tab, title in ((caption_tab, "Caption"), (self.tag_table, "Tags"),
                           (self.problem_report, "Problems"), (self.folder_list, "Folders")):
            self.tabs.addTab(tab, title)
        # all four tab titles readable, without scroll arrows, however narrow the splitter leaves this side
        self.tabs.setMinimumWidth(self.tabs.tabBar().sizeHint().width()
                                  + 2 * self.tabs.fontMetrics().height())
        return self.tabs

    def _act(self, text: str, tip: str, **qt_properties) -> QAction:
        action = QAction(text, self, toolTip=tip, statusTip=tip, **qt_properties)
        self.toolbar.addAction(action)
        return action
