"""The Train form's base-model field: a path, the models found, and the path's model or why it is unusable.

Detection reads files, so it never runs on the GUI thread: scans and the check of the typed path run on a
small pool of their own (`model_pool`), so a slow disk cannot hold up the app's quick background jobs. A
result that a newer scan or path has overtaken is dropped, and an overtaken job does not start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import QBoxLayout, QFileDialog, QLabel, QSizePolicy, QToolButton

from studio.config import resolve_path
from studio.models.detect import detect_model, scan_model_folders
from studio.models.entry_check import check_model_path
from studio.models.describe import (details, picker_rows, problem_text, same_path, skipped_details, skipped_note,
                                    summary)
from ui.background import run_in_background
from ui.layout import fill, row
from ui.theme import set_role
from ui.widgets.build import button
from ui.widgets.field_editors import PathEditor
from ui.widgets.model_list_popup import ModelListPopup

DETECT_DELAY_MS = 300  # typing a path checks it once the typing pauses, not at every key
EMPTY_HINT = "Choose a model from your model folders (▾) or on disk (…)."
ZWSP = "\u200b"


@cache
def model_pool() -> QThreadPool:
    """The pool model detection runs on: two threads, so checking the typed path need not wait for a scan."""
    return QThreadPool(maxThreadCount=2)


def _scan_job(folders: tuple[str, ...], wanted: Callable[[], bool]) -> Any:
    """Pool thread: the ModelScan of `folders`, or None when a newer scan was asked for meanwhile."""
    return scan_model_folders(folders) if wanted() else None


def _detect_job(path: Path, wanted: Callable[[], bool]) -> Any:
    """Pool thread: the ModelInfo of `path` (raises the detector's error), or None when overtaken."""
    if not wanted():
        return None
    check_model_path(path)  # the loader's first look, as studio.validate.check_files: the field says what Start says
    return detect_model(path)


def _breakable(text: str) -> str:
    """Let a word-wrapped label break long paths after each separator."""
    return text.replace("/", "/" + ZWSP).replace("\\", "\\" + ZWSP)


class ModelPicker(PathEditor):
    scan_finished = Signal()
    detection_finished = Signal()
    folders_changed = Signal(object)  # tuple[str, ...]: the user added a model folder here

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__(meta)
        self._folders: tuple[str, ...] = ()
        self._project_file: Path | None = None
        self._models: list = []  # ModelInfo from the last scan
        self._skipped: list = []  # SkippedFile from the last scan
        self._scan_gen = 0
        self._scanning = False
        self._scan_due = True  # folders changed (or never scanned): scan when next shown
        self._scan_error = ""
        self._detect_gen = 0
        self._current = None  # ModelInfo of the path in the field, when it is a model
        self._popup: ModelListPopup | None = None

        self.list_button = button("▾", "Models in your model folders (Alt+Down)", self.open_list,
                                  kind=QToolButton)
        self._edit.installEventFilter(self)  # Alt+Down opens the list, as in a combo box
        self.info = QLabel(wordWrap=True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # wrap, never widen
        self._set_info(EMPTY_HINT, "muted")
        for widget in (self._edit, self._button):
            self._layout.removeWidget(widget)
        self._layout.setDirection(QBoxLayout.Direction.TopToBottom)
        self._layout.setSpacing(2)
        fill(self._layout, row((self._edit, 1), self.list_button, self._button), self.info)
        self._menu.addSeparator()
        self._menu.addAction("Rescan model folders", self.rescan)
        self._menu.addAction("Add model folder…", self.choose_folder)

        self._timer = QTimer(self, singleShot=True, interval=DETECT_DELAY_MS, timeout=self.detect_now)
        self._edit.textChanged.connect(self._text_changed)

    # ---------------------------------------------------------------------------------------------
    # what the panel and the app settings tell it
    def set_folders(self, folders: Iterable[str]) -> None:
        """The model folders from the app settings; a change rescans (now if shown, else when shown)."""
        folders = tuple(folders)
        if folders == self._folders:
            return
        self._folders = folders
        self._scan_due = True
        if self.isVisible():
            self.rescan()

    def set_project_file(self, project_file: Path | None) -> None:
        """Relative model paths in a project are relative to its file."""
        self._project_file = Path(project_file) if project_file else None

    def add_folder(self, folder: str | Path) -> None:
        text = str(Path(folder).expanduser())
        if text not in self._folders:
            self._folders = (*self._folders, text)
            self.folders_changed.emit(self._folders)
        self.rescan()

    def choose_folder(self) -> None:
        start = str(Path(self._folders[-1]).parent) if self._folders else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", start)
        if folder:
            self.add_folder(folder)

    # ---------------------------------------------------------------------------------------------
    # scanning the folders
    @property
    def scanning(self) -> bool:
        return self._scanning

    def rescan(self) -> None:
        self._scan_gen += 1
        self._scan_due = False
        if not self._folders:
            self._models, self._skipped = [], []
            self._scan_done()
            return
        self._scanning = True
        self._refresh_list()
        gen = self._scan_gen
        run_in_background(_scan_job, self._folders, lambda: gen == self._scan_gen,
                          on_done=lambda scan: self._scanned(gen, scan),
                          on_error=lambda exc: self._scan_failed(gen, exc), pool=model_pool())

    def _scanned(self, gen: int, scan: Any) -> None:
        if gen != self._scan_gen or scan is None:
            return  # a newer scan was started: its result is the one to show
        self._scanning = False
        self._models, self._skipped = list(scan.models), list(scan.skipped)
        if self._current is None and self.value().strip():
            found = self._scanned_info(self._resolved())
            if found is not None:
                self._show_detected(found)
        self._scan_done()

    def _scan_failed(self, gen: int, exc: BaseException) -> None:
        if gen == self._scan_gen:
            self._scan_done(problem_text(exc))

    def _scan_done(self, error: str = "") -> None:
        self._scanning = False
        self._scan_error = error
        self._refresh_list()
        self.scan_finished.emit()

    def _scanned_info(self, path: Path):
        return next((m for m in self._models if same_path(m.path, path)), None)

    # ---------------------------------------------------------------------------------------------
    # the path in the field
    def _text_changed(self, _text: str) -> None:
        self._detect_gen += 1  # whatever is being read now is for an older path
        self._timer.start()

    def _resolved(self) -> Path:
        return resolve_path(self._project_file, self.value().strip())

    def detect_now(self) -> None:
        """Check the path in the field now (the field does it by itself shortly after each change)."""
        self._timer.stop()
        self._detect_gen += 1
        if not self.value().strip():
            self._show_current(None, EMPTY_HINT, "muted")
            return
        path = self._resolved()
        found = self._scanned_info(path)
        if found is not None:  # the scan has read it already
            self._show_detected(found)
            return
        self._set_info("Reading the model…", "muted")
        gen = self._detect_gen
        run_in_background(_detect_job, path, lambda: gen == self._detect_gen,
                          on_done=lambda info: self._detected(gen, info),
                          on_error=lambda exc: self._not_a_model(gen, exc), pool=model_pool())

    def _detected(self, gen: int, info: Any) -> None:
        if gen == self._detect_gen and info is not None:
            self._show_detected(info)

    def _show_detected(self, info: Any) -> None:
        self._show_current(info, summary(info), "muted", details(info))

    def _not_a_model(self, gen: int, exc: BaseException) -> None:
        if gen == self._detect_gen:
            self._show_current(None, problem_text(exc), "error")

    def _show_current(self, info: Any, text: str, role: str, tooltip: str = "") -> None:
        self._current = info
        self._set_info(text, role, tooltip)
        self._refresh_list()
        self.detection_finished.emit()

    def _set_info(self, text: str, role: str, tooltip: str = "") -> None:
        self.info.setText(_breakable(text))
        self.info.setToolTip(tooltip or text)
        set_role(self.info, role)

    def info_text(self) -> str:
        """The info line as the user reads it."""
        return self.info.text().replace(ZWSP, "")

    def info_is_error(self) -> bool:
        return self.info.property("role") == "error"

    # ---------------------------------------------------------------------------------------------
    # the list
    @property
    def popup(self) -> ModelListPopup:
        if self._popup is None:
            self._popup = ModelListPopup(self)
            self._popup.chosen.connect(self.choose)
            self._popup.rescan_requested.connect(self.rescan)
            self._popup.add_folder_requested.connect(self.choose_folder)
            self._refresh_list()
        return self._popup

    def open_list(self) -> None:
        if self._scan_due:
            self.rescan()
        self._refresh_list()
        self.popup.show_below(self._edit)

    def choose(self, path: Path) -> None:
        """Put a listed model in the field (the form sees an ordinary edit, so the project becomes dirty)."""
        self._edit.setText(str(path))
        self._edit.setFocus()
        self.detect_now()  # a listed model is known already: no need to wait for the typing pause

    def _refresh_list(self) -> None:
        if self._popup is None:
            return
        current = self._current if self._current is not None and self.value().strip() else None
        rows = picker_rows(self._models, current)
        outside = [current] if current is not None and rows and rows[0] is current and \
            self._scanned_info(current.path) is None else []
        self._popup.set_rows(rows, self._resolved() if self.value().strip() else None, outside=outside,
                             roots=self._folders)
        self._popup.set_status(*self._status())

    def _status(self) -> tuple[str, str]:
        if not self._folders:
            return "No model folders yet.", "Model folders are searched for base models (File ▸ Preferences)."
        where = "\n".join(self._folders)
        if self._scanning:
            n = len(self._folders)
            return f"Scanning {n} folder{'s' if n != 1 else ''}…", where
        if self._scan_error:
            return f"Scan failed: {self._scan_error}", where
        n, f = len(self._models), len(self._folders)
        text = f"{n} model{'s' if n != 1 else ''} in {f} folder{'s' if f != 1 else ''}"
        note = skipped_note(self._skipped)
        if note:
            return f"{text} · {note} (hover for why)", skipped_details(self._skipped)
        return text, where

    # ---------------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._edit and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Down and event.modifiers() & Qt.KeyboardModifier.AltModifier:
            self.open_list()
            return True
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._scan_due:
            QTimer.singleShot(0, self._scan_if_due)

    def _scan_if_due(self) -> None:
        if self._scan_due:
            self.rescan()
