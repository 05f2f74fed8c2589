"""The Mixer: LoRAs as rows of a mixing desk, a live preview, a strength grid, and export.

Every change restarts a short debounce timer; when it fires, one preview request goes to the job queue,
replacing an older one that has not started, so dragging a slider never queues a backlog and the previous
image stays until its successor is ready. While training runs a preview waits, shown as queued. A failed
job says why and leaves every button usable.

The panel knows nothing of processes: it talks to a job manager (`submit(request, title) -> Job`,
`cancel(job)`), in the app the window's `JobManager`, in tests one that runs jobs on a thread.
"""

from __future__ import annotations

import html
import itertools
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QLabel,
                               QLineEdit, QPushButton, QScrollArea, QSpinBox, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from studio.errors import StudioError
from studio.machine_defaults import PreviewDefaults
from studio.formats.peek import peek_lora
from studio.job_requests import MixBakeRequest, MixExportRequest, MixGridRequest, MixPreviewRequest
from studio.mix.grid import GridAxis
from studio.mix.messages import MixResult
from studio.mix.request import MixEntry, RenderRequest
from studio.mix.samplers import SAMPLERS
from ui.layout import fill, flat, row
from ui.jobs.job import CANCELLED, DONE, FAILED, QUEUED, Job
from ui.widgets.lora_mix_row import LoraMixRow
from ui.widgets.mix_export_box import MixExportBox
from ui.widgets.mix_preview_view import MixPreviewView
from ui.widgets.strength_grid_view import StrengthGridView

DEBOUNCE_MS = 250
SIZES = ("256×256", "512×512", "768×768", "1024×1024", "512×768", "768×512", "832×1216", "1216×832", "64×64")


class MixerPanel(QWidget):
    preview_shown = Signal(str)  # path of the image now on screen
    grid_shown = Signal(str)
    exported = Signal(str)  # path of a merged LoRA or baked checkpoint

    def __init__(self, jobs, parent: QWidget | None = None, *, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.jobs = jobs  # the window's JobManager (tests: tests/mixer_helpers.InProcessJobs)
        self.rows: list[LoraMixRow] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="lora-studio-mixer-")
        self._names = itertools.count(1)
        self._preview_job: Job | None = None  # the newest preview asked for
        self._grid_job: Job | None = None
        self._file_job: Job | None = None  # an export or a bake
        self._status_kind = "info"
        self._last_preview: Path | None = None
        self._preview_defaults: PreviewDefaults | None = None  # the device's, once the worker named it
        self._shown_defaults = ("512×512", 20)  # size and steps last set by default, not by the user
        self.setAcceptDrops(True)

        self.base = QLineEdit(placeholderText="base model: a diffusers folder or a .safetensors checkpoint")
        top = row(QLabel("Base model"), (self.base, 1),
                  QPushButton("File…", clicked=lambda: self._choose_base(folder=False)),
                  QPushButton("Folder…", clicked=lambda: self._choose_base(folder=True)))

        self.drop_hint = QLabel("Drop LoRA files here, or use “Add LoRA…”",
                                alignment=Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setProperty("role", "hint")
        holder = QWidget()
        self.rows_box = fill(QVBoxLayout(holder), self.drop_hint, None)
        self.rows_box.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(holder)
        add = QPushButton("Add LoRA…", clicked=self.choose_loras)

        prompt_box = QGroupBox("Preview settings")
        form = QFormLayout(prompt_box)
        self.prompt = QLineEdit("a photo of a cat, best quality")
        self.negative = QLineEdit("blurry, lowres")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=1)  # range first: Qt applies them in order
        self.steps = QSpinBox(minimum=1, maximum=150, value=20)
        self.sampler = QComboBox()
        self.sampler.addItems(list(SAMPLERS))
        self.size = QComboBox(editable=True)
        self.size.addItems(list(SIZES))
        self.size.setCurrentText("512×512")
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=30.0, singleStep=0.5, value=7.0)
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        form.addRow(row(QLabel("Seed"), self.seed, QLabel("Steps"), self.steps, QLabel("CFG"), self.guidance))
        form.addRow("Sampler", row((self.sampler, 1), QLabel("Size"), (self.size, 1)))

        left = QWidget()
        flat(fill(QVBoxLayout(left), (scroll, 1), add, prompt_box))

        self.preview = MixPreviewView()
        self.grid = StrengthGridView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.preview, "Preview")
        self.tabs.addTab(self.grid, "Strength grid")

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)

        self.export = MixExportBox()
        self.status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)

        fill(QVBoxLayout(self), top, (splitter, 1), self.export, self.status)

        self._timer = QTimer(self, singleShot=True, interval=debounce_ms, timeout=self._request_preview)
        for signal in (self.prompt.editingFinished, self.negative.editingFinished, self.seed.valueChanged,
                       self.steps.valueChanged, self.sampler.currentTextChanged, self.size.currentTextChanged,
                       self.guidance.valueChanged, self.base.editingFinished):
            signal.connect(self.schedule_preview)
        self.grid.render_requested.connect(self._render_grid)
        self.export.export_requested.connect(self._export)
        self.export.bake_requested.connect(self._bake)
        self.preview.cancel_requested.connect(lambda: self.cancel(self._preview_job))
        self.grid.view.cancel_requested.connect(lambda: self.cancel(self._grid_job))
        self._update_rows()

    # ---------------------------------------------------------------------------------------------
    # LoRAs
    def add_lora(self, path: str | Path) -> LoraMixRow | None:
        path = str(Path(path).expanduser())
        if any(r.path == path for r in self.rows):
            self._say(f"{Path(path).name} is already in the mix", "info")
            return None
        try:
            info = peek_lora(path)
        except StudioError as exc:
            self._say(str(exc), "error")
            return None
        row = LoraMixRow(info)
        row.changed.connect(self.schedule_preview)
        row.remove_requested.connect(self.remove_row)
        self.rows.append(row)
        self.rows_box.insertWidget(len(self.rows), row)  # after the drop hint, before the stretch
        self._update_rows()
        self.schedule_preview()
        return row

    def remove_row(self, row: LoraMixRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            row.setParent(None)
            row.deleteLater()
            self._update_rows()
            self.schedule_preview()

    def mix_family(self) -> str | None:
        return next((row.info.family for row in self.rows if row.info.family != "unknown"), None)

    def entries(self) -> tuple[MixEntry, ...]:
        family = self.mix_family()
        return tuple(r.entry() for r in self.rows if r.check_family(family))

    def set_preview_defaults(self, defaults: PreviewDefaults | None = None) -> None:
        """Preview size and steps for the device and the LoRAs' family (issue 18: a CPU gets a small, quick
        preview), each only while the user has not changed it."""
        self._preview_defaults = d = defaults or self._preview_defaults
        if d is None:
            return
        family = self.mix_family()
        size, steps = f"{d.size_for(family)}×{d.size_for(family)}", d.steps_for(family)
        if self.size.currentText() == self._shown_defaults[0]:
            self.size.setCurrentText(size)
        if self.steps.value() == self._shown_defaults[1]:
            self.steps.setValue(steps)
        self._shown_defaults = (size, steps)
        for widget in (self.size, self.steps):
            widget.setToolTip(f"Default: {d.reason}")

    def _update_rows(self) -> None:
        self.set_preview_defaults()  # an SDXL LoRA added: its native size
        self.drop_hint.setVisible(not self.rows)
        self.grid.set_loras([r.title() for r in self.rows if r.check_family(self.mix_family())])
        self._update_buttons()

    def choose_loras(self) -> None:
        """Add LoRA… (the button and Mixer ▸ Add LoRA): pick .safetensors files to add as rows."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Add LoRAs", "", "LoRA files (*.safetensors)")
        for p in paths:
            self.add_lora(p)

    def _choose_base(self, *, folder: bool) -> None:
        if folder:
            path = QFileDialog.getExistingDirectory(self, "Base model folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Base model", "", "Checkpoints (*.safetensors)")
        if path:
            self.set_base_model(path)

    def set_base_model(self, path: str | Path) -> None:
        self.base.setText(str(path))
        self.schedule_preview()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        for url in event.mimeData().urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".safetensors"):
                self.add_lora(url.toLocalFile())
        event.acceptProposedAction()

    # ---------------------------------------------------------------------------------------------
    # requests
    def request(self) -> RenderRequest:
        try:
            w, h = (int(x) for x in self.size.currentText().lower().replace("x", "×").split("×"))
        except ValueError:
            w = h = 512
        return RenderRequest(prompt=self.prompt.text(), negative=self.negative.text(), seed=self.seed.value(),
                             steps=self.steps.value(), sampler=self.sampler.currentText(), width=w, height=h,
                             guidance=self.guidance.value(), loras=self.entries())

    def schedule_preview(self, *_args) -> None:
        self._timer.start()

    @property
    def busy(self) -> bool:
        return any(j is not None and j.active for j in (self._preview_job, self._grid_job, self._file_job))

    def _request_preview(self) -> None:
        base = self.base.text().strip()
        if not base:
            self.preview.set_busy("Choose a base model to see a preview")
            return
        old, self._preview_job = self._preview_job, None
        if old is not None and old.state == QUEUED:
            self.jobs.cancel(old)  # the newest request replaces one that has not started
        out = Path(self._tmp.name) / f"preview-{next(self._names)}.png"
        self._submit("_preview_job", MixPreviewRequest(base=base, out=str(out), request=self.request()),
                     "mixer preview", self.preview, "preview")

    def _render_grid(self, x: int, xv: tuple, y: int, yv: tuple) -> None:
        base = self.base.text().strip()
        if not base:
            self.grid.view.set_busy("Choose a base model first")
            return
        out = Path(self._tmp.name) / f"grid-{next(self._names)}.png"
        request = MixGridRequest(base=base, out=str(out), request=self.request(), x=GridAxis(lora=x, values=xv),
                                 y=GridAxis(lora=y, values=yv) if y >= 0 else None)
        self._submit("_grid_job", request, "strength grid", self.grid.view,
                     f"grid of {len(xv) * max(1, len(yv))} images")

    def _export(self, rank, dtype: str, path: str) -> None:
        entries = tuple(e for e in self.entries() if e.enabled)
        if not entries:
            self._say("Nothing to export: enable at least one LoRA", "error")
            return
        self._submit("_file_job", MixExportRequest(loras=entries, out=path, rank=rank, dtype=dtype), "merged export",
                     None, "export")
        self._say(f"Exporting {Path(path).name}…", "info")

    def _bake(self, path: str) -> None:
        base = self.base.text().strip()
        if not base:
            self._say("Choose the base model to bake into", "error")
            return
        entries = tuple(e for e in self.entries() if e.enabled)
        self._submit("_file_job", MixBakeRequest(base=base, loras=entries, out=path), "bake into checkpoint", None,
                     "bake")
        self._say(f"Baking into {Path(path).name}… (loads the base model in full precision)", "info")

    def _submit(self, slot: str, request, title: str, view: MixPreviewView | None, what: str) -> None:
        """The job is remembered in `slot` and shown in `view` (None: the status line)."""
        job = self.jobs.submit(request, title)
        setattr(self, slot, job)
        update = (lambda *_a: self._show_job(job, view, what))
        for signal in (job.state_changed, job.detail_changed, job.progress_changed):
            signal.connect(update)
        job.ended.connect(lambda _state: self._ended(job, view))
        if job.active:
            update()
        else:
            self._ended(job, view)
        self._update_buttons()

    def cancel(self, job: Job | None) -> None:
        """Cancel (the preview's or the grid's button): a queued render is dropped at once; a running one is
        stopped by the worker between two steps."""
        if job is not None and job.active:
            self.jobs.cancel(job)

    def _show_job(self, job: Job, view: MixPreviewView | None, what: str) -> None:
        if view is not None and job in (self._preview_job, self._grid_job) and job.active:
            view.show_job(job, what)
        elif view is None and job is self._file_job and job.state == QUEUED:
            self._say(f"{job.title}: {job.detail}", "info")

    # ---------------------------------------------------------------------------------------------
    # results
    def _ended(self, job: Job, view: MixPreviewView | None) -> None:
        current = job in (self._preview_job, self._grid_job, self._file_job)
        if view is not None and current:
            view.show_job(job)  # hides the bar and Cancel
        if job.state == DONE:
            for result in job.results:
                self._on_result(result)
            if self._status_kind == "error":
                self._say("", "info")  # a later success clears the old error
        elif job.state == FAILED and current:
            self._on_failed(job, view)
        elif job.state == CANCELLED and current and view is not None:
            view.set_busy("cancelled")
        self._update_buttons()

    def _on_result(self, result: MixResult) -> None:
        if result.kind == "preview":
            if self.preview.show_image(result.path, result.summary):
                if self._last_preview is not None and str(self._last_preview) != result.path:
                    self._last_preview.unlink(missing_ok=True)
                self._last_preview = Path(result.path)
                self.preview_shown.emit(result.path)
        elif result.kind == "grid":
            if self.grid.view.show_image(result.path, result.summary):
                self.grid_shown.emit(result.path)
        else:
            self.export.show_result(result.path, result.summary, merged=result.kind == "export")
            self._say(f"Wrote {Path(result.path).name}: {(result.summary.splitlines() or [''])[0]}", "success")
            self.exported.emit(result.path)

    def _on_failed(self, job: Job, view: MixPreviewView | None) -> None:
        error, hint = job.error or job.detail, job.hint
        for row in self.rows:
            row.show_problem(error if error.startswith(Path(row.path).name) else "")
        if view is not None:
            view.set_busy(f"Failed: {error}")
        self._say(f"The {job.title} failed: {error}" + (f" — {hint}" if hint else ""), "error")

    def _update_buttons(self) -> None:
        filing = self._file_job is not None and self._file_job.active
        self.export.set_busy(filing)
        self.export.export_button.setEnabled(bool(self.rows) and not filing)
        gridding = self._grid_job is not None and self._grid_job.active
        self.grid.render_button.setEnabled(bool(self.rows) and not gridding)

    def _say(self, text: str, kind: str) -> None:
        self._status_kind = kind
        style = {"error": " style='color:#b00020'", "success": " style='color:#1d6b2f'"}.get(kind, "")
        self.status.setText(f"<span{style}>{html.escape(text)}</span>")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._tmp.cleanup()
        super().closeEvent(event)
