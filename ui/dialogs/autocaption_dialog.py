"""Auto-captioning: choose a model on disk and a mode, watch the progress, cancel at any time.

The captioning runs in the app's worker process as an `autocaption` job (`AutoCaptionRequest`), like every
long job; this dialog sends the request through the window's `WorkerClient` and follows its events by
request id: `JobProgress` drives the bar, each `CaptionWritten` (the worker has written that sidecar)
is collected, and when the job ends (or is cancelled) the results go to the panel with the mode, which
records them as one undoable edit.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from studio.dataset.autocaption import CaptionResult, detect_kind
from studio.errors import StudioError
from studio.events import CaptionWritten, Failed, Finished, JobProgress
from studio.job_requests import AutoCaptionRequest
from studio.worker import protocol as p
from studio.worker.client import WorkerExited

MODES = [("only-empty", "Only images without a caption"), ("append", "Append new tags to existing captions"),
         ("replace", "Replace existing captions")]

_ids = itertools.count(1_000_000)  # apart from the JobManager's ids until this dialog goes through it


class AutoCaptionDialog(QDialog):
    captions_ready = Signal(list, str)  # list[CaptionResult], mode

    def __init__(self, images: list[Path], parent: QWidget | None = None, *, settings: QSettings | None = None,
                 client: Any = None, caption_extension: str = ".txt") -> None:
        super().__init__(parent)
        self.setWindowTitle("Auto-caption")
        self.images = images
        self.settings = settings if settings is not None else QSettings()
        self.caption_extension = caption_extension
        self._own_client = client is None  # no window around it (a test, a panel on its own): its own worker
        if client is None:
            from ui.worker_client import WorkerClient

            client = WorkerClient(self)
        self.client = client
        self.request_id: int | None = None  # the job in flight (sent or waiting for the worker)
        self._pending: AutoCaptionRequest | None = None  # waiting for the worker to be ready
        self._started = False  # the worker has sent job_started for it
        self._stopped = False
        self.results: list[CaptionResult] = []
        client.message_received.connect(self._on_message)
        client.state_changed.connect(self._on_state)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Caption {len(images)} image{'s' if len(images) != 1 else ''} with a model on "
                                "this computer: a transformers image-to-text folder (BLIP, GIT, …) or a WD14 "
                                "tagger (model.onnx with selected_tags.csv). Nothing is downloaded."))
        form = QFormLayout()
        row = QHBoxLayout()
        self.model = QLineEdit(str(self.settings.value("autocaption/model", "")))
        self.model.setPlaceholderText("Model folder or .onnx file")
        self.model.textChanged.connect(self._validate)
        browse_dir = QPushButton("Folder…")
        browse_dir.clicked.connect(self._browse_folder)
        browse_file = QPushButton("ONNX file…")
        browse_file.clicked.connect(self._browse_file)
        row.addWidget(self.model, 1)
        row.addWidget(browse_dir)
        row.addWidget(browse_file)
        form.addRow("Model", row)
        self.kind = QLabel()
        form.addRow("", self.kind)
        self.mode = QComboBox()
        for key, label in MODES:
            self.mode.addItem(label, key)
        self.mode.setCurrentIndex(max(0, self.mode.findData(self.settings.value("autocaption/mode", "only-empty"))))
        form.addRow("Existing captions", self.mode)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(float(self.settings.value("autocaption/threshold", 0.35)))
        self.threshold.setToolTip("WD14 taggers: keep tags at least this likely")
        form.addRow("Tag threshold", self.threshold)
        layout.addLayout(form)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, len(images)))
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self._cancel_or_close)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self._validate()

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Captioning model folder", self.model.text())
        if path:
            self.model.setText(path)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "WD14 tagger", self.model.text(), "ONNX model (*.onnx)")
        if path:
            self.model.setText(path)

    def _validate(self) -> bool:
        text = self.model.text().strip()
        try:
            kind = detect_kind(Path(text).expanduser()) if text else None
        except StudioError as exc:
            self.kind.setText(f"<span style='color:#c0392b'>{exc}</span>")
            self.start_button.setEnabled(False)
            return False
        self.kind.setText({"wd14": "WD14 tagger (onnxruntime)", "transformers": "transformers image-to-text model",
                           None: ""}[kind])
        self.threshold.setEnabled(kind == "wd14")
        ok = kind is not None and bool(self.images) and self.request_id is None
        self.start_button.setEnabled(ok)
        return ok

    @property
    def chosen_mode(self) -> str:
        return self.mode.currentData()

    def start(self) -> None:
        if not self._validate():
            return
        model = Path(self.model.text().strip()).expanduser()
        self.settings.setValue("autocaption/model", str(model))
        self.settings.setValue("autocaption/mode", self.chosen_mode)
        self.settings.setValue("autocaption/threshold", self.threshold.value())
        request = AutoCaptionRequest(model=str(model), images=tuple(str(i) for i in self.images),
                                     mode=self.chosen_mode, threshold=self.threshold.value(),
                                     caption_extension=self.caption_extension, request_id=next(_ids))
        self.request_id, self._started, self._stopped, self.results = request.request_id, False, False, []
        self.start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.progress.setValue(0)
        if self.client.state == "ready" and self.client.send(request):
            self.status.setText("Loading the model…")
            return
        self._pending = request  # sent as soon as the worker says it is ready
        if not self.client.running:
            self.client.start()
        self.status.setText("Waiting for the worker to start (loading PyTorch)…")

    def _on_state(self, state: str, detail: str) -> None:
        if state == "ready" and self._pending is not None:
            request, self._pending = self._pending, None
            if self.client.send(request):
                self.status.setText("Loading the model…")
            else:
                self._finish(f"Failed: the worker did not take the request ({detail})")
        elif state in ("dead", "stopped") and self._pending is not None:
            self._pending = None
            self._finish(f"Failed: the worker could not start ({detail})")

    def _on_message(self, message: Any) -> None:
        rid = self.request_id
        if rid is None or self._pending is not None:
            return
        if isinstance(message, p.JobStarted):
            self._started = message.request_id == rid
        elif isinstance(message, p.WorkerError) and message.request_id == rid:
            self._finish(f"Failed: {message.error} — {message.hint or 'try again when it has finished'}")
        elif isinstance(message, JobProgress) and message.request_id == rid:
            self.progress.setRange(0, max(1, message.total))
            self.progress.setValue(message.done)
            if message.done == 0:
                self.status.setText("Loading the model…")
        elif isinstance(message, CaptionWritten) and message.request_id == rid:
            self.results.append(CaptionResult(Path(message.image), message.generated or None, message.error,
                                              written=message.caption is not None))
            if message.generated:
                self.status.setText(f"{Path(message.image).name}: {message.generated}")
        elif isinstance(message, Failed) and self._started:
            self._finish(f"Failed: {message.error}" + (f" — {message.hint}" if message.hint else ""))
        elif isinstance(message, Finished) and self._started:
            self._finish(f"{'Cancelled' if message.stopped or self._stopped else 'Done'}: "
                         f"{sum(1 for r in self.results if r.caption)} captions made.")
        elif isinstance(message, WorkerExited) and self._started:
            self._finish("Failed: the worker stopped before the captions were finished — "
                         "the model may need more memory than this computer has")

    def _finish(self, message: str) -> None:
        self.status.setText(message)
        self.cancel_button.setText("Close")
        self.request_id, self._pending, self._started = None, None, False
        self._validate()
        done = [r for r in self.results if r.caption]
        self.results = []
        if done:
            self.captions_ready.emit(done, self.chosen_mode)

    def _cancel_or_close(self) -> None:
        if self.request_id is not None:
            self.status.setText("Stopping after the current batch…")
            self._stop()
            return
        self.accept()

    def _stop(self) -> None:
        self._stopped = True
        if self._pending is not None:  # never sent: nothing runs
            self._finish("Cancelled before the worker started.")
        elif self._started:
            self.client.send(p.Stop())

    def reject(self) -> None:  # Esc / window close: stop the job; what is written so far is kept and undoable
        if self.request_id is not None:
            self._stop()
            if self.request_id is not None:
                self._finish("Cancelled.")
        super().reject()

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: the dialog's own worker goes with it
        super().done(result)
        if self._own_client:
            self.client.shutdown(10)
