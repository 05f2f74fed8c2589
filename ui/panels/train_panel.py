"""The Train panel: settings form, run controls, live charts, previews, log and run history.

A state machine over the run (idle → checking → starting → running ⇄ paused → stopping → idle) driven by
the worker's events and the user's buttons. It never talks to the worker: runs and plain-LoRA copies go to
the window's job queue, where they may wait behind a mixer preview, and Pause / Stop / Save are emitted as
`command_requested` for MainWindow to send. Anything that touches the disk runs on the thread pool.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from studio.config import ProjectConfig, dumps_project, load_preset, loads_project, resolve_path, save_project
from studio.errors import Problem, StudioError
from studio.job_requests import PlainCopyRequest, TrainRequest
from studio.machine_defaults import MachineDefaults
from studio.safe_names import refuse_unsafe_name
from studio.events import (Checkpoint, Failed, Finished, Log, Progress, Sample, Started, StateChanged)
from studio.worker import protocol as p
from studio.worker.client import WorkerExited
from studio.validate import check_files, errors_of, validate
from studio.last_run import LastRun, RunTrace, read_last_run, read_trace
from studio.preset_info import preset_changes
from studio.run_folder import clean_partial_files, last_checkpoint
from studio.mix.messages import MixResult
from ui.background import run_in_background
from ui.layout import fill, flat, row
from ui.jobs.job import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job
from ui.widgets.compat_report_view import CompatReportView
from ui.panels.train_checks import FormChecks
from ui.widgets.config_form import ConfigForm, FormError, label_for
from ui.widgets.log_view import LogView
from ui.widgets.loss_chart import LossChart
from ui.widgets.model_picker import ModelPicker
from ui.widgets.preflight_view import PreflightView
from ui.widgets.preview_gallery import PreviewGallery
from ui.widgets.run_controls import RunControls
from ui.widgets.run_history import RunHistory
from ui.widgets.preset_box import PresetBox
from ui.widgets.preset_note import PresetNote
from ui.widgets.status_banner import StatusBanner
from ui.widgets.train_queue_view import TrainQueueView

ACTIVE = ("starting", "running", "paused", "stopping")
JOB_EVENTS = (Started, Progress, Sample, Checkpoint, Log, StateChanged, Finished, Failed)


def check_and_save(cfg: ProjectConfig, project_file: Path) -> list[Problem]:
    """Pool thread: the disk check (`check_files`), and the project saved when it and `validate` pass (what
    trains is what is saved). Returns the disk check's problems; the form has the others."""
    problems = check_files(cfg, project_file)
    if not errors_of(validate(cfg) + problems):
        save_project(cfg, project_file)
    return problems


def prepare_resume(run_dir: Path) -> tuple[str, int, Path]:
    """Pool thread: the run's own config snapshot and its newest complete checkpoint."""
    found = last_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint to resume from")
    return (run_dir / "config.toml").read_text(encoding="utf-8"), found[0], found[1]


def after_worker_death(run_dir: Path | None, output_dir: Path | None) -> tuple[list[Path], tuple[int, Path] | None]:
    """Pool thread: remove the temporaries a killed write left behind; find the checkpoint to resume from."""
    if run_dir is None:
        return [], None
    removed = clean_partial_files(run_dir, *([output_dir] if output_dir else []))
    return removed, last_checkpoint(run_dir)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _output_dir(command: TrainRequest) -> Path | None:
    """Where the run exports its final LoRA (cleaned of partial files if the worker dies)."""
    try:
        cfg = loads_project(command.config_toml, "the run's settings")
    except Exception:
        return None
    return resolve_path(command.project_file, cfg.output.directory)


class TrainPanel(QWidget):
    command_requested = Signal(object)  # a studio.worker.protocol command for the worker
    restart_worker_requested = Signal()
    project_file_chosen = Signal(object)  # Path: the user saved a new project while starting
    config_changed = Signal()
    run_state_changed = Signal(str)
    model_folders_changed = Signal(object)  # tuple[str, ...]: the user added a model folder in the picker

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project_file: Path | None = None
        self.run_state = "idle"
        self.run_dir: Path | None = None
        self.output_dir: Path | None = None
        self.checkpoint_step = self.last_step = 0
        self.worker_state = "stopped"
        self._resume_target: Path | None = None
        self._job_kind: str | None = None  # the kind of the worker job whose events are arriving
        self._run_handlers = {Started: self._on_started, Finished: self._on_finished, Failed: self._on_failed,
                              WorkerExited: self._on_worker_exited}  # by exact type: none has a subclass
        self.jobs = None  # the window's JobManager (use_jobs)
        self._train_job: Job | None = None
        self._build()
        self.checks = FormChecks(self.form, self.banner, lambda: self.project_file, lambda: self.run_state == "idle")
        self._wire()
        self._set_run_state("idle")

    # ---------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = split = QSplitter(Qt.Orientation.Horizontal)
        QHBoxLayout(self).addWidget(split)

        self.presets = PresetBox()
        self.preset_note = PresetNote()  # what the last preset changed, with Undo
        self._preset_sync = QTimer(self, singleShot=True, interval=150)  # the box follows the form's values
        self.form = ConfigForm()
        self.model_picker: ModelPicker = self.form.editor("model", "path")  # type: ignore[assignment]
        scroll = QScrollArea(widgetResizable=True, minimumWidth=380)
        scroll.setWidget(self.form)
        left = QWidget()
        flat(fill(QVBoxLayout(left), row(QLabel("Preset:"), (self.presets, 1)), self.preset_note,
                  (scroll, 1)))
        split.addWidget(left)

        self.banner = StatusBanner()
        self.controls = RunControls()
        self.queue_button = QPushButton("Queue")  # beside Start (a short word: the row fits a 1024 px window)
        self.queue_button.setToolTip("Add these settings to the training queue, to train after the others "
                                     "(the Queue tab runs them one after another)")
        self.controls.layout().itemAt(0).layout().insertWidget(1, self.queue_button)
        self.export_box = QGroupBox("Export", visible=False)  # the last exported LoRA: which WebUIs load it
        self.compat = CompatReportView()
        QVBoxLayout(self.export_box).addWidget(self.compat)
        self.charts_split = charts_split = QSplitter(Qt.Orientation.Vertical)
        self.chart = LossChart()
        self.tabs = QTabWidget()
        self.gallery = PreviewGallery()
        self.log = LogView()
        self.history = RunHistory()
        # the base model's family as the picker detected it (its ModelInfo), for the estimate and warnings
        self.preflight = PreflightView(family_of=lambda: getattr(self.model_picker._current, "family", None))
        self.queue_view = TrainQueueView()
        for tab, title in ((self.preflight, "Before you start"), (self.gallery, "Previews"),
                           (self.log, "Log"), (self.history, "History"), (self.queue_view, "Queue")):
            self.tabs.addTab(tab, title)
        charts_split.addWidget(self.chart)
        charts_split.addWidget(self.tabs)
        charts_split.setSizes([420, 300])
        right = QWidget()
        flat(fill(QVBoxLayout(right), self.banner, self.controls, self.export_box,
                  (charts_split, 1)))
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([430, 870])

    def _wire(self) -> None:
        self.presets.preset_chosen.connect(self._apply_preset)
        self.preset_note.undo_clicked.connect(self._undo_preset)
        self.form.changed.connect(self.config_changed)
        self.form.changed.connect(self._preset_sync.start)
        self._preset_sync.timeout.connect(self._sync_preset_box)
        self.form.changed.connect(self._update_preflight)
        self.run_state_changed.connect(self.preflight.run_state)
        self.preflight.headline_changed.connect(self._show_headline)
        self.model_picker.folders_changed.connect(self.model_folders_changed)
        c = self.controls
        c.start_clicked.connect(self.start)
        self.queue_button.clicked.connect(self.add_to_queue)
        c.stop_clicked.connect(self.stop)
        for clicked, command in ((c.pause_clicked, p.Pause), (c.resume_clicked, p.Resume),
                                 (c.save_clicked, p.SaveNow), (c.sample_clicked, p.SampleNow)):
            clicked.connect(lambda command=command: self.command_requested.emit(command()))
        self.banner.action_clicked.connect(self._banner_action)
        self.history.resume_requested.connect(lambda run: self.resume_run(run.path))
        self.history.previews_requested.connect(
            lambda run: run_in_background(read_trace, run.path, on_done=self._fill_gallery))
        self.compat.plain_copy_requested.connect(self._plain_copy)

    def use_jobs(self, jobs) -> None:
        self.jobs = jobs
        self.queue_view.use_jobs(jobs)

    # ---------------------------------------------------------------------------------------------
    # project
    def set_project(self, cfg: ProjectConfig, project_file: Path | None) -> None:
        """Show a project: its settings, and — unless a run is going — only its own runs, chart and previews,
        with its newest run's chart and previews loaded from its run folder and a resume offer if it stopped
        before its final export."""
        self.project_file = Path(project_file) if project_file else None
        self.model_picker.set_project_file(self.project_file)
        self.form.set_config(cfg)
        self.presets.show_config(cfg)
        self.preset_note.hide()
        project_dir = self.project_file.parent if self.project_file else None
        self.history.set_project_dir(project_dir)
        self._update_preflight()
        if self.run_active:
            return
        self.controls.reset(cfg.schedule.max_steps)
        self._resume_target = self.run_dir = self.output_dir = None
        self.checkpoint_step = self.last_step = 0
        self.banner.hide()
        self.chart.clear()
        self.gallery.clear()
        self.export_box.setVisible(False)
        self.tabs.setCurrentWidget(self.preflight)  # before a run the summary matters, not an empty chart
        self.charts_split.setSizes([0, 1])
        if project_dir is not None:
            run_in_background(read_last_run, project_dir, on_done=lambda last: self._show_last_run(project_dir, last))

    def _show_last_run(self, project_dir: Path, last: LastRun | None) -> None:
        if last is None or self.run_active or self.project_file is None or self.project_file.parent != project_dir:
            return
        self.chart.clear()
        for point in last.trace.points:
            self.chart.add(*point)
        if last.trace.points:
            self.charts_split.setSizes([420, 300])
        self._show_previews(last.trace.previews)
        if last.summary.resumable:
            run = last.summary
            hint = f"Resume continues from its checkpoint at step {run.checkpoint_step}"
            hint += f" ({run.error})." if run.error else " with the same optimizer, schedule and random state."
            self._offer_resume(run.path, run.checkpoint_step, "info", last.stop_sentence(), hint, "Resume")
            self.controls.set_details(last.stop_sentence())

    def _show_headline(self, text: str) -> None:
        """The summary's first line under Start, in place of "Not running." (never over "Stopped at …")."""
        if self.run_state == "idle" and self.controls.details.text().startswith("Not running."):
            if self.preflight.summary is not None:
                self.controls.reset(self.preflight.summary.max_steps)
            self.controls.set_details(f"Not running. {text}.")

    def _update_preflight(self) -> None:
        if (cfg := self._config_or_none()) is not None:  # else the summary keeps the last possible settings
            self.preflight.update_config(cfg, self.project_file)

    def set_model_folders(self, folders: tuple[str, ...]) -> None:
        self.model_picker.set_folders(folders)

    def current_config(self) -> ProjectConfig:
        """The form's config; raises FormError (the fields highlighted, the banner listing them) if a value
        is impossible."""
        try:
            return self.form.config()
        except FormError:
            self.form.reveal()
            raise

    def _config_or_none(self, *, reveal: bool = False) -> ProjectConfig | None:
        """The form's config, or None while a value is impossible (`reveal`: as `current_config` shows it)."""
        try:
            return self.current_config() if reveal else self.form.config()
        except FormError:
            return None

    def _apply_preset(self, name: str) -> None:
        if (before := self._config_or_none(reveal=True)) is None:
            self._sync_preset_box()
            return
        self.preflight.set_preset(name)
        run_in_background(load_preset, name, before, on_done=lambda cfg: self._preset_loaded(name, before, cfg),
                          on_error=lambda exc: self.banner.show_message("error", f"Preset {name}: {exc}",
                                                                        getattr(exc, "hint", "")))

    def _preset_loaded(self, name: str, before: ProjectConfig, after: ProjectConfig) -> None:
        """The preset goes into the form, and the note lists what it changed (issue 18: nothing changes unseen)."""
        self.form.set_config(after)
        self.presets.show_config(after)
        self.preset_note.show_changes(name, preset_changes(before, after))
        self.config_changed.emit()
        self._update_preflight()

    def apply_machine_defaults(self, defaults: MachineDefaults) -> None:
        """A new project on a newly known device: its defaults, each change said with its reason."""
        if (cfg := self._config_or_none()) is None:
            return  # the user is typing into a new project: theirs, not ours to change
        changes = defaults.changes(cfg)
        self.form.set_config(defaults.apply(cfg))
        self._update_preflight()
        for d in changes:
            self.log.add("info", f"default for this machine: [{d.section}] {d.key} = {d.value!r} — {d.reason}")
        if changes:
            self.banner.show_message("info", f"Settings chosen for {defaults.device.describe()}: " + ", ".join(
                f"{label_for(d.section, d.key)} {d.value}" for d in changes) + ".", changes[0].reason)

    def _undo_preset(self) -> None:
        """The settings the preset changed go back to what they were; later edits to other fields stay."""
        if (cfg := self._config_or_none()) is None:
            return
        for change in self.preset_note.changes:
            cfg = cfg.with_section(change.section, **{change.key: change.old})
        self.form.set_config(cfg)
        self.presets.show_config(cfg)
        self.preset_note.hide()
        self.config_changed.emit()

    def _sync_preset_box(self) -> None:
        if (cfg := self._config_or_none()) is not None:  # else a half-typed value: the box stays as it was
            self.presets.show_config(cfg)

    # ---------------------------------------------------------------------------------------------
    # commands
    @property
    def run_active(self) -> bool:
        return self.run_state in ACTIVE

    def start(self) -> None:
        if self.run_state != "idle" or (cfg := self._config_or_none(reveal=True)) is None:
            return
        if not self.preflight.confirm_start():  # on a CPU, a long run is confirmed once
            return
        if self.project_file is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the project before training", "project.toml",
                                                  "LoRA Studio project (*.toml)")
            if not path:
                return
            try:  # a name another system cannot hold (`a:b.toml`, `CON.toml`) is refused before anything is saved
                refuse_unsafe_name(path, "the project file")
            except StudioError as exc:
                self.banner.show_message("error", str(exc), exc.hint)
                return
            self.project_file = Path(path)
            self.project_file_chosen.emit(self.project_file)
            self.history.set_project_dir(self.project_file.parent)
        self.banner.hide()
        self.checks.forget()
        self._set_run_state("checking")
        project_file = self.project_file
        run_in_background(check_and_save, cfg, project_file,
                          on_done=lambda problems: self._checked(cfg, project_file, problems),
                          on_error=self._check_failed)

    def add_to_queue(self) -> None:
        """Queue the form's settings (unsaved edits included); the runs go in the project's folder."""
        if (cfg := self._config_or_none(reveal=True)) is None:
            return
        if self.project_file is None:
            self.banner.show_message("warning", "Save the project before queueing it",
                                     "A queued run goes into the project's folder (runs/), so it needs one.")
            return
        self.queue_view.add(str(self.project_file), dumps_project(cfg))
        self.tabs.setCurrentWidget(self.queue_view)

    def _checked(self, cfg: ProjectConfig, project_file: Path, file_problems: list[Problem]) -> None:
        self._set_run_state("idle")
        self.checks.files_checked(file_problems)
        problems = self.form.problems()
        for pr in problems:
            self.log.add(pr.severity, f"[{pr.section}] {pr.key}: {pr.message}")
        if errors_of(problems):
            self.form.reveal()  # the banner lists them all, the first field is focused
            return
        if problems:
            self.banner.show_message("warning", problems[0].message, "The run starts anyway.")
        self._begin(TrainRequest(config_toml=dumps_project(cfg), project_file=str(project_file)), fresh=True)

    def _check_failed(self, exc: BaseException) -> None:
        self.banner.show_message("error", f"Cannot start: {exc}", getattr(exc, "hint", ""))
        self._set_run_state("idle")

    def _begin(self, command: TrainRequest, *, fresh: bool) -> None:
        self.output_dir = _output_dir(command)
        if fresh:
            self.chart.clear()
            self.gallery.clear()
        self.tabs.setCurrentWidget(self.gallery)
        if self.charts_split.sizes()[0] == 0:
            self.charts_split.setSizes([420, 300])
        self.checkpoint_step = self.last_step = 0
        self.run_dir = Path(command.run_dir) if command.run_dir else None
        self._set_run_state("starting")
        job = self._train_job = self.jobs.submit(command, "training")
        job.detail_changed.connect(lambda _d: self._train_job_changed(job))
        job.state_changed.connect(lambda _s: self._train_job_changed(job))
        self._train_job_changed(job)

    def _train_job_changed(self, job: Job) -> None:
        """Before the run's own events arrive: queued behind another job, sent, or cancelled / refused."""
        if job is not self._train_job or self.run_state != "starting":
            return
        if job.state == QUEUED:
            self.controls.set_details(_sentence(job.detail) + ".")
        elif job.state == RUNNING:
            self.controls.set_details("Loading the model and the dataset…")
        elif job.state == CANCELLED:
            self._set_run_state("idle")
            self.controls.set_details("Cancelled before it started.")
        elif job.state == FAILED and job.worker_exit is None:  # a dead worker: _on_worker_exited says it
            self._set_run_state("idle")
            self.banner.show_message("error", f"Cannot start: {job.error}", job.hint)

    def stop(self) -> None:
        job = self._train_job
        if self.run_state == "starting" and job is not None and job.state == QUEUED:
            self.jobs.cancel(job)  # it never reached the worker
            return
        if self.run_state in ("starting", "running", "paused"):
            self.command_requested.emit(p.Stop())
            self._set_run_state("stopping")
            self.controls.set_details("Stopping after the current step (saving a checkpoint)…")

    def request_save_and_stop(self) -> None:
        """For closing the window during a run: save a checkpoint, then stop."""
        if self.run_state in ("running", "paused", "starting"):
            self.command_requested.emit(p.SaveNow())
            self.stop()

    def resume_run(self, run_dir: Path) -> None:
        if self.run_active or self.run_state == "checking":
            self.banner.show_message("warning", "A run is in progress", "Stop it before resuming another.")
            return
        self._set_run_state("checking")
        run_in_background(prepare_resume, Path(run_dir), on_done=lambda r: self._resume_ready(Path(run_dir), *r),
                          on_error=self._check_failed)

    def _resume_ready(self, run_dir: Path, config_text: str, step: int, checkpoint: Path) -> None:
        self.log.add("info", f"resuming {run_dir.name} from the checkpoint at step {step}")
        self.banner.hide()
        self._begin(TrainRequest(config_toml=config_text,
                                 project_file=str(self.project_file) if self.project_file else None,
                                 resume_from=str(checkpoint), run_dir=str(run_dir)), fresh=run_dir != self.run_dir)

    def command_not_sent(self, command: p.Command, reason: str) -> None:
        """MainWindow could not deliver a control command (no worker): undo the state change it implied."""
        if self.run_active:
            self._set_run_state("idle")
        self.banner.show_message("error", f"The worker is not running ({reason}).",
                                 "It is being restarted; try again in a few seconds.")

    def _banner_action(self) -> None:
        if self._resume_target is not None:
            self.resume_run(self._resume_target)
        elif self.worker_state == "unresponsive":
            self.restart_worker_requested.emit()

    # ---------------------------------------------------------------------------------------------
    # export: the per-loader report and the plain-LoRA copy
    def show_export(self, lora_path: str) -> None:
        self.export_box.setVisible(True)
        self.compat.show_file(lora_path)

    def _plain_copy(self, source: str, rank: int, out: str) -> None:
        if self.run_active:
            self.compat.show_copy_error("a training run is using the worker", "make the copy when it has finished")
            return
        try:
            refuse_unsafe_name(Path(out), "the plain-LoRA copy")
            cfg = self.current_config()
        except (StudioError, FormError) as exc:
            self.compat.show_copy_error(str(exc), getattr(exc, "hint", ""))
            return
        job = self.jobs.submit(PlainCopyRequest(src=source, out=out, rank=rank, base=cfg.model.path,
                                                                  dtype=cfg.output.dtype), "plain-LoRA copy")
        job.event.connect(lambda m: self.log.add(m.level, m.text, m.time) if isinstance(m, Log) else None)
        job.ended.connect(lambda _state: self._plain_copy_ended(job))

    def _plain_copy_ended(self, job: Job) -> None:
        result = next((r for r in job.results if isinstance(r, MixResult)), None)
        if job.state == DONE and result is not None:
            self.compat.show_copy_result(result.path, result.summary)
            self.log.add("info", f"plain-LoRA copy: {result.path} ({result.summary})")
        elif job.state != CANCELLED:
            self.compat.show_copy_error(job.error or "the copy was not written", job.hint)

    # ---------------------------------------------------------------------------------------------
    # worker
    def set_worker_state(self, state: str, detail: str) -> None:
        previous, self.worker_state = self.worker_state, state
        if state == "unresponsive":
            self._resume_target = None
            self.banner.show_message("warning", _sentence(detail), "It may be busy with a very long step, or "
                                     "hung. Restarting it ends the run; you can resume from the last checkpoint.",
                                     "Restart worker")
        elif previous == "unresponsive" and state in ("ready", "starting") and self.banner.kind == "warning":
            self.banner.hide()
        if self.run_state == "starting" and state == "ready":
            self.controls.set_details("Loading the model and the dataset…")

    def handle_message(self, message: object) -> None:
        """Every message from the worker, in order. Its other jobs' events (the mixer's previews), bracketed
        by job_started/job_ended, are not this panel's."""
        if isinstance(message, p.JobStarted):
            self._job_kind = message.kind
            return
        if isinstance(message, p.JobEnded):
            self._job_kind = None
            return
        if isinstance(message, JOB_EVENTS) and self._job_kind != TrainRequest.type \
                and not (isinstance(message, Log) and self._job_kind is None):
            return  # another job's event; a Log outside any job is the worker's own
        handler = self._run_handlers.get(type(message))
        if handler is not None:
            handler(message)
        elif isinstance(message, Progress):
            self.last_step = message.step
            self.controls.show_progress(message)
            self.history.show_active_step(message.step)
            self.chart.add(message.step, message.loss, message.smoothed_loss, message.lr)
        elif isinstance(message, Sample):
            self.gallery.add(message.step, message.prompt, message.path)
        elif isinstance(message, Log):
            self.log.add(message.level, message.text, message.time)
        elif isinstance(message, Checkpoint):
            self.checkpoint_step = message.step
            self.log.add("info", f"checkpoint saved at step {message.step}: {message.path}")
            if message.lora_path:
                self.show_export(message.lora_path)
        elif isinstance(message, StateChanged):
            if message.state in ("running", "paused", "stopping") and self.run_active:
                self._set_run_state(message.state)
        elif isinstance(message, p.WorkerError):
            self.log.add("error", message.error + (f" — {message.hint}" if message.hint else ""))
            if self.run_state == "starting" and not (self._train_job and self._train_job.state == QUEUED):
                self.banner.show_message("error", message.error, message.hint)
                self._set_run_state("idle")
        elif isinstance(message, p.ProtocolError):
            self.log.add("warning", f"unreadable message from the worker: {message}")

    def _on_started(self, e: Started) -> None:
        self.run_dir = Path(e.run_dir)
        self.last_step = self.checkpoint_step = e.start_step
        self._set_run_state("running")
        self.controls.begin(e.total_steps, e.start_step)
        self.log.add("info", f"run folder {e.run_dir} on {e.device}, {e.num_images} images"
                             + (f", resuming at step {e.start_step}" if e.start_step else ""))
        if e.start_step:
            self.chart.truncate(e.start_step)
            self.gallery.truncate(e.start_step)
            if self.chart.count() == 0:
                run_dir = self.run_dir
                run_in_background(read_trace, run_dir, e.start_step,
                                  on_done=lambda trace: self._prefill(run_dir, trace))
        self.history.set_active_run(self.run_dir, e.start_step, e.total_steps)
        self.history.refresh()

    def _prefill(self, run_dir: Path, trace: RunTrace) -> None:
        """What a resumed run made before its checkpoint, under what it has made since it started again."""
        if run_dir != self.run_dir:
            return
        have = self.chart.last()
        for point in trace.points:
            if have is None or point[0] < have[0]:
                self.chart.add(*point)
        shown = {(t.step, t.path) for t in self.gallery.thumbnails}
        for step, prompt, path in trace.previews:
            if (step, path) not in shown:
                self.gallery.add(step, prompt, path)

    def _on_finished(self, e: Finished) -> None:
        self._set_run_state("idle")
        self.history.refresh()
        if e.stopped:
            self._offer_resume(self.run_dir, self.checkpoint_step, "info",
                               f"Stopped at step {e.step}.", "The run can be continued from its last checkpoint.")
            self.controls.set_details(f"Stopped at step {e.step}.")
        else:
            final = e.outputs[-1] if e.outputs else ""
            if final:
                self.show_export(final)
            self._resume_target = None
            self.banner.show_message("success", f"Finished: {e.step} steps.", f"LoRA saved to {final}" if final else "")
            self.controls.set_details(f"Finished at step {e.step}.")

    def _on_failed(self, e: Failed) -> None:
        was_running = self.run_state in ACTIVE
        self._set_run_state("idle")
        self.log.add("error", e.error + (f" — {e.hint}" if e.hint else ""))
        if e.traceback:
            self.log.add("traceback", e.traceback.rstrip())
        self.controls.set_details(f"Failed at step {self.last_step}.")
        self._offer_resume(self.run_dir if was_running else None, self.checkpoint_step, "error",
                           f"The run failed: {e.error}", e.hint)
        self.history.refresh()

    def _on_worker_exited(self, e: WorkerExited) -> None:
        self._job_kind = None
        if not self.run_active and self.run_state != "checking":
            return
        if self._train_job is not None and self._train_job.state == QUEUED:
            return  # still queued: it runs on the next worker
        was = self.run_state
        self._set_run_state("idle")
        if e.expected:
            return
        what = e.describe()
        if e.stderr_tail.strip():
            self.log.add("error", "last output of the worker:\n" + e.stderr_tail.strip()[-2000:])
        self.log.add("error", f"{what} (run state: {was}, step {self.last_step})")
        self.controls.set_details(f"Interrupted at step {self.last_step}.")
        self.banner.show_message("error", f"{_sentence(what)} during the run, at step {self.last_step}.",
                                 "Looking for the last checkpoint…")
        run_dir, output_dir = self.run_dir, self.output_dir
        run_in_background(after_worker_death, run_dir, output_dir,
                          on_done=lambda result: self._death_checked(run_dir, what, *result))

    def _death_checked(self, run_dir: Path | None, what: str, removed: list[Path],
                       found: tuple[int, Path] | None) -> None:
        for path in removed:
            self.log.add("info", f"removed the partial file {path}")
        self.history.refresh()
        if found is None or run_dir is None:
            self._resume_target = None
            self.banner.show_message("error", f"{_sentence(what)} at step {self.last_step}.",
                                     "No checkpoint had been saved yet; start the run again (a new worker is starting).")
            return
        self.checkpoint_step = found[0]
        self._offer_resume(run_dir, found[0], "error", f"{_sentence(what)} at step {self.last_step}.",
                           f"The last checkpoint is at step {found[0]}; resume continues from there with the same "
                           "optimizer, schedule and random state.")

    def _offer_resume(self, run_dir: Path | None, step: int, kind: str, title: str, hint: str,
                      action: str = "") -> None:
        """The banner's message, with a Resume button when there is a checkpoint to resume from."""
        self._resume_target = run_dir if step else None
        action = (action or f"Resume from step {step}") if self._resume_target else ""
        self.banner.show_message(kind, title, hint, action)

    def _fill_gallery(self, trace: RunTrace) -> None:
        if not self.run_active:
            self._show_previews(trace.previews)
            self.tabs.setCurrentWidget(self.gallery)

    def _show_previews(self, previews) -> None:
        self.gallery.clear()
        for preview in previews:
            self.gallery.add(*preview)

    def _set_run_state(self, state: str) -> None:
        self.run_state = state
        self.controls.set_state(state)
        for widget in (self.form, self.presets, self.preset_note):
            widget.setEnabled(state == "idle")
        self.history.set_resume_allowed(state == "idle")
        if state == "idle":
            self.history.set_active_run(None)
        self.run_state_changed.emit(state)
