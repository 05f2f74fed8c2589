"""The Dataset panel's widgets and where they sit: toolbar, filter bar over the grid and its status line,
and the Caption / Tags / Problems / Folders tabs. Nothing here is connected; `wiring.connect` does that."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QSplitter, QTabWidget, QToolBar, QVBoxLayout,
                               QWidget)

from ui.models.disk_watcher import DiskWatcher
from ui.widgets.caption_editor import CaptionEditor
from ui.widgets.dataset_filter_bar import DatasetFilterBar
from ui.widgets.dataset_grid import DatasetGrid
from ui.widgets.focus_picker import FocusPicker
from ui.widgets.folder_list import FolderList
from ui.widgets.problem_report import ProblemReport
from ui.widgets.status_banner import StatusBanner
from ui.widgets.tag_frequency_table import TagFrequencyTable


class LayoutMixin:
    """Builds the panel's widgets as attributes of the panel (a QWidget)."""

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
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter_bar)
        lv.addWidget(self.grid, 1)
        lv.addWidget(self.footer)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self._build_tabs())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)

        self.watcher = DiskWatcher(self)
        self._freq_timer = QTimer(self, singleShot=True, interval=300)
        self._footer_timer = QTimer(self, singleShot=True, interval=250)

    def _build_toolbar(self, own_shortcuts: bool) -> None:
        self.toolbar = QToolBar()
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.add_folder_action = self._act("Add folder…", "Reference a folder of images in place")
        self.import_action = self._act("Import a copy…", "Copy a folder of images into the project folder")
        self.toolbar.addSeparator()
        self.batch_action = self._act("Batch edit…", "Edit the captions of many images at once")
        self.trigger_action = self._act("Trigger word first…", "Put a trigger word at the start of captions")
        self.autocaption_action = self._act("Auto-caption…", "Caption images with a model on this computer")
        self.check_action = self._act("Check images", "Look for broken, unusual and duplicate files")
        self.toolbar.addSeparator()
        self.exclude_action = self._act("Exclude", "Leave the selected images out of training (E)")
        self.exclude_action.setCheckable(True)
        self.exclude_action.setShortcut(QKeySequence("E"))
        self.exclude_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.toolbar.addSeparator()
        # fixed labels (the step to undo is in the tooltip), so the toolbar does not jump around
        self.undo_action = QAction("Undo", self)
        self.redo_action = QAction("Redo", self)
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

    def _build_tabs(self) -> QTabWidget:
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
        return self.tabs

    def _act(self, text: str, tip: str) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        self.toolbar.addAction(action)
        return action
