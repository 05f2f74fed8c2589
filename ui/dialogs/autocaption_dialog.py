"""Auto-captioning: choose a model on disk and a mode, watch the progress, cancel at any time.

It runs in the worker as a job of the window's `JobManager`, so it waits its turn behind a training; the
captions written go to the panel when the job ends: one undoable edit.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from studio.dataset.autocaption import CaptionResult, detect_kind
from studio.errors import StudioError
from studio.events import CaptionWritten
from studio.job_requests import AutoCaptionRequest
from ui.jobs import CANCELLED, DONE, QUEUED, Job, JobManager, JobProgress
from ui.layout import fill, row

MODES = [("only-empty", "Only images without a caption"), ("append", "Append new tags to existing captions"),
         ("replace", "Replace existing captions")]


class AutoCaptionDialog(QDialog):
    captions_ready = Signal(list, str)  # list[CaptionResult], mode

    def __init__(self, images: list[Path], parent: QWidget | None = None, *, settings: QSettings | None = None,
                 jobs: JobManager | None = None, caption_extension: str = ".txt") -> None:
        super().__init__(parent)
        self.setWindowTitle("Auto-caption")
        self.images = images
        self.settings = settings if settings is not None else QSettings()
        self.caption_extension = caption_extension
        self._own_jobs = jobs is None  # no window around it (a test, a panel on its own): its own worker
        if jobs is None:
            from ui.worker_client import WorkerClient

            jobs = JobManager(WorkerClient(self), self)
        self.jobs = jobs
        self.job: Job | None = None  # the job of the last Start (queued, running or ended)
        self.results: list[CaptionResult] = []
        intro = QLabel(f"Caption {len(images)} image{'s' if len(images) != 1 else ''} with a model on "
                       "this computer: a transformers image-to-text folder (BLIP, GIT, …) or a WD14 "
                       "tagger (model.onnx with selected_tags.csv). Nothing is downloaded.")
        form = QFormLayout()
        self.model = QLineEdit(str(self.settings.value("autocaption/model", "")),
                               placeholderText="Model folder or .onnx file", textChanged=self._validate)
        browse_dir = QPushButton("Folder…", clicked=lambda: self._browse(onnx=False))
        browse_file = QPushButton("ONNX file…", clicked=lambda: self._browse(onnx=True))
        form.addRow("Model", row((self.model, 1), browse_dir, browse_file))
        self.kind = QLabel()
        form.addRow("", self.kind)
        self.mode = QComboBox()
        for key, label in MODES:
            self.mode.addItem(label, key)
        self.mode.setCurrentIndex(max(0, self.mode.findData(self.settings.value("autocaption/mode", "only-empty"))))
        form.addRow("Existing captions", self.mode)
        self.threshold = QDoubleSpinBox(minimum=0.01, maximum=0.99, singleStep=0.05,
                                        toolTip="WD14 taggers: keep tags at least this likely")
        self.threshold.setValue(float(self.settings.value("autocaption/threshold", 0.35)))
        form.addRow("Tag threshold", self.threshold)
        self.progress = QProgressBar(minimum=0, maximum=max(1, len(images)), value=0)
        self.status = QLabel(wordWrap=True)
        self.start_button = QPushButton("Start", default=True, clicked=self.start)
        self.cancel_button = QPushButton("Close", clicked=self._cancel_or_close)
        fill(QVBoxLayout(self), intro, form, self.progress, self.status,
             row(None, self.start_button, self.cancel_button))
        self._validate()

    def _browse(self, onnx: bool) -> None:
        start = self.model.text()
        path = (QFileDialog.getOpenFileName(self, "WD14 tagger", start, "ONNX model (*.onnx)")[0] if onnx
                else QFileDialog.getExistingDirectory(self, "Captioning model folder", start))
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
        ok = kind is not None and bool(self.images) and not self.active
        self.start_button.setEnabled(ok)
        return ok

    @property
    def chosen_mode(self) -> str:
        return self.mode.currentData()

    @property
    def active(self) -> bool:
        return self.job is not None and self.job.active

    def start(self) -> None:
        if not self._validate():
            return
        model = Path(self.model.text().strip()).expanduser()
        self.settings.setValue("autocaption/model", str(model))
        self.settings.setValue("autocaption/mode", self.chosen_mode)
        self.settings.setValue("autocaption/threshold", self.threshold.value())
        request = AutoCaptionRequest(model=str(model), images=tuple(str(i) for i in self.images),
                                     mode=self.chosen_mode, threshold=self.threshold.value(),
                                     caption_extension=self.caption_extension)
        self.results = []
        self.progress.setRange(0, max(1, len(self.images)))
        self.progress.setValue(0)
        self.cancel_button.setText("Cancel")
        n = len(self.images)
        job = self.jobs.submit(request, f"auto-caption {n} image{'s' if n != 1 else ''}")
        self.job = job
        job.detail_changed.connect(lambda _d: self._show_state(job))
        job.state_changed.connect(lambda _s: self._show_state(job))
        job.progress_changed.connect(lambda progress: self._show_progress(job, progress))
        job.event.connect(lambda message: self._on_event(job, message))
        job.ended.connect(lambda _state: self._finish(job))
        self._validate()
        if job.active:
            self._show_state(job)
        else:
            self._finish(job)

    def _show_state(self, job: Job) -> None:
        if job is not self.job or not job.active:
            return
        if job.detail:  # "queued: runs after the training job", "starting…", "stopping…"
            self.status.setText(job.detail[:1].upper() + job.detail[1:])
        elif job.state == QUEUED:
            self.status.setText("Queued")
        elif not self.results:
            self.status.setText("Loading the model…")

    def _show_progress(self, job: Job, progress: JobProgress) -> None:
        if job is self.job:
            self.progress.setRange(0, max(1, progress.total))
            self.progress.setValue(progress.done)

    def _on_event(self, job: Job, message: object) -> None:
        if job is not self.job or not isinstance(message, CaptionWritten):
            return
        self.results.append(CaptionResult(Path(message.image), message.generated or None, message.error,
                                          written=message.caption is not None))
        if message.generated:
            self.status.setText(f"{Path(message.image).name}: {message.generated}")

    def _finish(self, job: Job) -> None:
        """The job ended (done, failed or cancelled): say how, and hand what was written to the panel."""
        if job is not self.job:
            return
        made = sum(1 for r in self.results if r.caption)
        if job.state == DONE:
            self.status.setText(f"Done: {made} captions made.")
        elif job.state == CANCELLED:
            started = job.started_at is not None
            self.status.setText(f"Cancelled: {made} captions made." if started else "Cancelled before it started.")
        else:
            self.status.setText(f"Failed: {job.error}" + (f" — {job.hint}" if job.hint else ""))
        self.cancel_button.setText("Close")
        self._validate()
        done, self.results = [r for r in self.results if r.caption], []
        if done:
            self.captions_ready.emit(done, self.chosen_mode)

    def _cancel_or_close(self) -> None:
        if self.active:
            self.jobs.cancel(self.job)  # a queued job ends at once; a running one stops after its batch
            if self.active:
                self.status.setText("Stopping after the current batch…")
            return
        self.accept()

    def reject(self) -> None:  # Esc / window close: stop the job; what is written until it ends is kept, undoable
        if self.active:
            self.jobs.cancel(self.job)
        super().reject()

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: the dialog's own worker goes with it
        super().done(result)
        if self._own_jobs:
            self.jobs.shut_down()
            self.jobs.worker.shutdown(10)
