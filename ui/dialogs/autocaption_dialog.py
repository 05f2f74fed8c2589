"""Auto-captioning: choose a model on disk and a mode, watch the progress, cancel at any time.

The model runs in a child process (`studio.dataset.autocaption.CaptionProcess`), polled here by a timer.
The dialog only collects results; when the job ends (or is cancelled) it emits them with the mode and
the panel applies them as one undoable edit, so nothing is written behind the user's back.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from studio.dataset.autocaption import CaptionJob, CaptionProcess, CaptionResult, detect_kind
from studio.errors import StudioError

MODES = [("only-empty", "Only images without a caption"), ("append", "Append new tags to existing captions"),
         ("replace", "Replace existing captions")]
POLL_MS = 100


class AutoCaptionDialog(QDialog):
    captions_ready = Signal(list, str)  # list[CaptionResult], mode

    def __init__(self, images: list[Path], parent: QWidget | None = None, *,
                 settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Auto-caption")
        self.images = images
        self.settings = settings if settings is not None else QSettings()
        self.process: CaptionProcess | None = None
        self.results: list[CaptionResult] = []
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
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
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
        ok = kind is not None and bool(self.images) and self.process is None
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
        job = CaptionJob(model=model, images=tuple(self.images), threshold=self.threshold.value())
        self.process = CaptionProcess(job)
        self.process.start()
        self.results = []
        self.start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.status.setText("Starting the captioning process…")
        self.timer.start()

    def _poll(self) -> None:
        if self.process is None:
            return
        for event in self.process.events():
            if event.kind == "loading":
                self.status.setText("Loading the model…")
            elif event.kind == "started":
                self.status.setText("Captioning…")
            elif event.kind == "result" and event.result is not None:
                self.results.append(event.result)
                self.progress.setValue(len(self.results))
                if event.result.caption:
                    self.status.setText(f"{event.result.path.name}: {event.result.caption}")
            elif event.kind in ("done", "cancelled"):
                self._finish(f"{'Cancelled' if event.kind == 'cancelled' else 'Done'}: "
                             f"{sum(1 for r in self.results if r.caption)} captions made.")
            elif event.kind == "failed":
                self._finish(f"Failed: {event.message}" + (f" — {event.hint}" if event.hint else ""))

    def _finish(self, message: str) -> None:
        self.timer.stop()
        self.status.setText(message)
        self.cancel_button.setText("Close")
        if self.process is not None:
            self.process.wait(5)
            self.process.kill()
        self.process = None
        self._validate()
        done = [r for r in self.results if r.caption]
        if done:
            self.captions_ready.emit(done, self.chosen_mode)

    def _cancel_or_close(self) -> None:
        if self.process is not None:
            self.status.setText("Stopping after the current batch…")
            self.process.cancel()
            return
        self.accept()

    def reject(self) -> None:  # Esc / window close: stop the child first
        if self.process is not None:
            self.process.cancel(grace_s=0)
            self.process.kill()
            self.process = None
            self.timer.stop()
        super().reject()
