"""The Dataset panel: folders of images as a thumbnail grid, their captions, checks and choices.

It presents `studio.dataset` and does no file work itself: scanning, thumbnails (a thread pool with an
on-disk cache), checks, caption writes and dataset.json all live there. Every change a user makes is a
QUndoCommand on `undo_stack`, batch edits included, and undo writes the files back.

The panel is one widget whose jobs live in `ui.panels.dataset` (layout; folders, drops and disk changes;
the grid and its selection; captions; choices; checks and counters), and whose signals are all connected
in `ui.panels.dataset.wiring`. MainWindow calls `set_project` when a project opens and `shutdown()` when it
closes, and adds `undo_stack` to its QUndoGroup.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QWidget

from studio.dataset.captions import CaptionStore
from studio.dataset.check import CheckReport
from studio.dataset.state import DatasetState
from studio.dataset.thumbnails import ThumbnailCache
from ui.models.check_runner import CheckRunner
from ui.models.dataset_loader import DatasetLoader
from ui.models.dataset_model import DatasetFilterProxy, DatasetModel
from ui.panels.dataset import wiring
from ui.panels.dataset.captions import CaptionsMixin
from ui.panels.dataset.choices import ChoicesMixin
from ui.panels.dataset.counters import CountersMixin
from ui.panels.dataset.folders import FoldersMixin
from ui.panels.dataset.grid import GridMixin
from ui.panels.dataset.layout import LayoutMixin


class DatasetPanel(LayoutMixin, FoldersMixin, GridMixin, CaptionsMixin, ChoicesMixin, CountersMixin, QWidget):
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
        self.model.request_thumbnail = self._request_urgent
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
