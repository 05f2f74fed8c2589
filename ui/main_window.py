"""The one window: Dataset, Train and Mixer areas, menus, the worker's status — and all signal wiring.

Only `_wire` connects the panels' signals (taggui's rule), so the data flow can be read in one method.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QToolButton

from studio.config import ProjectConfig, load_project, save_project
from studio.hardware import Hardware, probe
from studio.machine_defaults import defaults_for, device_from_ready
from studio.project import save_project_as
from studio.worker import protocol as p
from ui.background import run_in_background
from ui.documentation import open_documentation
from ui.jobs import JobManager
from ui.jobs.jobs_view import JobsView
from ui.panels.dataset_panel import DatasetPanel
from ui.panels.mixer_panel import MixerPanel
from ui.panels.train_panel import TrainPanel
from ui.wheel_guard import guard_wheel_in
from ui.widgets.config_form import FormError
from ui.worker_client import WorkerClient

STATE_COLOURS = {"ready": "#3c9a4b", "starting": "#c88a00", "stopping": "#c88a00", "unresponsive": "#d9534f",
                 "dead": "#d9534f", "stopped": "#888888"}
QUIT_GRACE_S = 3.0  # on quit: the worker's time to stop its job (a run saves) and exit before it is killed
QUIT_LIMIT_S = 5.0  # on quit: the window closes by then, whatever the worker does
MAX_QUICK_RESTARTS = 3  # a worker that keeps dying before it is ready is reported, not restarted forever


def panel_keys(step: int, platform: str = sys.platform) -> tuple[str, ...]:
    """Next (+1) / previous (-1) panel keys. Qt reads "Ctrl" as Cmd on macOS, where Cmd+Tab switches apps:
    there the physical Control key is "Meta", and Cmd+Shift+] / [ is the usual next / previous tab."""
    if platform == "darwin":
        return ("Meta+Tab", "Ctrl+Shift+]") if step > 0 else ("Meta+Shift+Tab", "Ctrl+Shift+[")
    return ("Ctrl+Tab", "Ctrl+PgDown") if step > 0 else ("Ctrl+Shift+Tab", "Ctrl+PgUp")


class MainWindow(QMainWindow):
    def __init__(self, project_file: Path | None = None, *, settings: QSettings | None = None,
                 worker: WorkerClient | None = None, start_worker: bool = True) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings()
        self.worker = worker if worker is not None else WorkerClient(self)
        self.project_file: Path | None = None
        self.project_loaded = False
        self.dirty = False
        self._closing = False
        self._close_ready = False
        self._restarts: list[float] = []
        self._probe: Hardware | None = None  # GPUs and VRAM without torch, for the defaults (issue 18)
        self._new_project = False  # an untitled project nobody has edited: machine defaults may apply
        self._dataset_sync = QTimer(self, singleShot=True, interval=600)

        self.jobs = JobManager(self.worker, self)  # the one sender of job requests to the worker
        self.train_panel = TrainPanel()
        self.train_panel.use_jobs(self.jobs)
        self.dataset_panel = DatasetPanel(settings=self.settings, own_shortcuts=False)  # Edit ▸ Undo drives it
        self.dataset_panel.jobs = self.jobs  # auto-captioning queues with the other jobs
        self.dataset_panel.checker.jobs = self.jobs  # image checks are listed with them
        self.mixer_panel = MixerPanel(self.jobs)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.dataset_panel, "Dataset")
        self.tabs.addTab(self.train_panel, "Train")
        self.tabs.addTab(self.mixer_panel, "Mixer")
        self.tabs.setCurrentWidget(self.train_panel)
        self.setCentralWidget(self.tabs)
        self._build_jobs_dock()
        self.worker_label = QLabel()
        self.statusBar().addPermanentWidget(self.jobs_button)
        self.statusBar().addPermanentWidget(self.worker_label)
        self._build_menus()
        self._wire()
        guard_wheel_in(self)  # every spin box and combo box of the three panels (issue 18: no change without intent)
        self._restore_settings()
        self._update_title()
        self._on_worker_state(self.worker.state, "")
        if project_file is not None:
            self.open_project(Path(project_file))
        else:
            self._project_ready(ProjectConfig(), None)
        if start_worker:
            run_in_background(probe, on_done=self._probed)
            self.worker.start()

    # ---------------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        """Every main action in a menu, with its shortcut (issue 18); the desktop shell adds New, Recent,
        Preferences, Undo/Redo, Full Screen and About around these."""
        menu = self.file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(menu, "&Open project…", self.choose_project, QKeySequence.StandardKey.Open)
        self.save_action = self._action(menu, "&Save project", self.save_project, QKeySequence.StandardKey.Save)
        self._action(menu, "Save project &as…", self.save_project_as, QKeySequence.StandardKey.SaveAs)
        menu.addSeparator()
        self.export_action = self._action(menu, "&Export merged LoRA…", self._export_mix, "Ctrl+E")
        self.export_action.setStatusTip("Merge the Mixer's LoRAs into one file")
        menu.addSeparator()
        self.quit_action = self._action(menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.view_menu = self.menuBar().addMenu("&View")
        self._build_view_menu(self.view_menu)
        data = self.menuBar().addMenu("&Dataset")
        d = self.dataset_panel
        for action in (d.add_folder_action, d.import_action, None, d.batch_action, d.trigger_action,
                       d.autocaption_action, d.check_action):
            data.addSeparator() if action is None else data.addAction(action)
        d.check_action.setShortcut(QKeySequence("Ctrl+Shift+I"))
        d.check_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.check_images_action = d.check_action
        self.addAction(d.check_action)  # its toolbar is hidden while another panel shows
        d.check_action.triggered.connect(lambda: self.show_panel(0))
        run = self.menuBar().addMenu("&Run")
        c = self.train_panel.controls
        self.start_action = self._action(run, "&Start training", c.start_button.click, "Ctrl+Return")
        self.stop_action = self._action(run, "S&top", c.stop_button.click, "Ctrl+.")
        self._action(run, "Save &now", c.save_button.click)
        self._action(run, "Sample n&ow", c.sample_button.click)
        mixer = self.menuBar().addMenu("&Mixer")
        self.add_lora_action = self._action(mixer, "&Add LoRA…", self._add_lora, "Ctrl+L")
        mixer.addAction(self.export_action)
        worker = self.menuBar().addMenu("&Worker")
        self._action(worker, "&Restart worker", self.restart_worker)
        self.help_menu = self.menuBar().addMenu("&Help")
        self.docs_action = self._action(self.help_menu, "&Documentation", lambda: open_documentation(self),
                                        QKeySequence.StandardKey.HelpContents)

    def _build_view_menu(self, view) -> None:
        for index in range(self.tabs.count()):
            self._action(view, f"&{index + 1} {self.tabs.tabText(index)}",
                         lambda _=False, i=index: self.show_panel(i), f"Ctrl+{index + 1}")
        view.addSeparator()
        for text, step in (("&Next panel", +1), ("&Previous panel", -1)):
            action = self._action(view, text, lambda _=False, s=step: self._step_panel(s))
            action.setShortcuts([QKeySequence(k) for k in panel_keys(step)])
        view.addSeparator()
        jobs = self.jobs_dock.toggleViewAction()
        jobs.setText("&Jobs")
        jobs.setShortcut(QKeySequence("Ctrl+J"))
        view.addAction(jobs)
        self.addAction(jobs)

    def _build_jobs_dock(self) -> None:
        """The Jobs list in a bottom dock, hidden until asked for (View ▸ Jobs, Ctrl+J, or the status bar's
        "Jobs: …" button), so the window still fits 1024×700."""
        self.jobs_view = JobsView(self.jobs)
        self.jobs_dock = QDockWidget("Jobs", self, objectName="jobsDock", allowedAreas=(
            Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea))
        self.jobs_dock.setWidget(self.jobs_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.jobs_dock.hide()
        self.jobs_button = QToolButton()
        self.jobs_button.setAutoRaise(True)
        self.jobs_button.setToolTip("Show the jobs: progress, Cancel, and the order of the queued ones (Ctrl+J)")
        self.jobs_button.clicked.connect(lambda: self.jobs_dock.setVisible(not self.jobs_dock.isVisible()))
        for signal in (self.jobs.job_added, self.jobs.job_removed, self.jobs.job_changed):
            signal.connect(lambda *_a: self.jobs_button.setText(self.jobs_view.summary()))
        self.jobs_button.setText(self.jobs_view.summary())

    def show_panel(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def _step_panel(self, step: int) -> None:
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    def _export_mix(self) -> None:
        self.tabs.setCurrentWidget(self.mixer_panel)
        button = self.mixer_panel.export.export_button
        if button.isEnabled():
            button.click()
        else:
            self.statusBar().showMessage("Add a LoRA to the Mixer first; then Export merges the mix.", 6000)

    def _add_lora(self) -> None:
        self.tabs.setCurrentWidget(self.mixer_panel)
        self.mixer_panel.choose_loras()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text, slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        self.addAction(action)  # shortcuts work in full screen too, where the menu bar may be hidden
        return action

    def _wire(self) -> None:
        panel, worker = self.train_panel, self.worker
        worker.message_received.connect(panel.handle_message)
        worker.state_changed.connect(self._on_worker_state)
        panel.command_requested.connect(self._send)
        panel.restart_worker_requested.connect(self.restart_worker)
        panel.project_file_chosen.connect(self._project_file_chosen)
        panel.config_changed.connect(self._mark_dirty)
        panel.run_state_changed.connect(lambda state: self.open_action.setEnabled(state == "idle"))
        panel.config_changed.connect(self._dataset_sync.start)
        self._dataset_sync.timeout.connect(self._sync_dataset_panel)
        self.dataset_panel.folders_changed.connect(self._dataset_folders_changed)
        self.dataset_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        # models dropped on the Dataset panel go where they are used (issue 18)
        self.dataset_panel.model_dropped.connect(lambda path: self.train_panel.model_picker.choose(Path(path)))
        self.dataset_panel.loras_dropped.connect(lambda paths: [self.mixer_panel.add_lora(p) for p in paths])

    # ---------------------------------------------------------------------------------------------
    # project
    def open_project(self, path: Path) -> None:
        self.project_loaded = False
        run_in_background(load_project, path, on_done=lambda cfg: self._project_ready(cfg, path),
                          on_error=lambda exc: self._project_failed(path, exc))

    def choose_project(self) -> None:
        if self.train_panel.run_active:
            QMessageBox.information(self, "LoRA Studio", "Stop the run before opening another project.")
            return
        start = str(self.project_file.parent) if self.project_file else self.settings.value("lastDir", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", str(start), "LoRA Studio project (*.toml)")
        if path:
            self.open_project(Path(path))

    def _project_ready(self, cfg: ProjectConfig, path: Path | None) -> None:
        self._new_project = path is None and cfg == ProjectConfig()
        self.project_file = Path(path).resolve() if path else None
        self.train_panel.set_project(cfg, self.project_file)
        self._show_dataset(cfg)
        self.dirty = False
        self.project_loaded = True
        if self.project_file:
            self.settings.setValue("lastProject", str(self.project_file))
            self.settings.setValue("lastDir", str(self.project_file.parent))
        self._update_title()

    def _project_failed(self, path: Path, exc: BaseException) -> None:
        self.project_loaded = True
        self.train_panel.banner.show_message("error", f"Cannot open {path}: {exc}", getattr(exc, "hint", ""))

    def save_project(self) -> bool:
        if self.project_file is None:
            return self.save_project_as()
        path = self.project_file
        return self._save(path, lambda cfg: save_project(cfg, path), lambda _: self._saved(path))

    def save_project_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save the project", str(self.project_file or "project.toml"),
                                              "LoRA Studio project (*.toml)")
        if not path:
            return False
        new, old = Path(path).resolve(), self.project_file
        return self._save(new, lambda cfg: save_project_as(cfg, old, new),
                          lambda saved: self._saved_as(new, saved))

    def _save(self, path: Path, save, on_done) -> bool:
        """`save(cfg)` on a pool thread; False when the form's settings are not valid (the form says why)."""
        try:
            cfg = self.train_panel.current_config()
        except FormError:
            return False
        run_in_background(save, cfg, on_done=on_done,
                          on_error=lambda exc: self.train_panel.banner.show_message(
                              "error", f"Cannot save {path}: {exc}", getattr(exc, "hint", "")))
        return True

    def _saved_as(self, path: Path, cfg: ProjectConfig) -> None:
        """Shown as if opened from `path` (the paths as saved, the Dataset area on its new folder)."""
        self._project_ready(cfg, path)
        self._saved(path)

    def _saved(self, path: Path) -> None:
        self.dirty = False
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)

    def _show_dataset(self, cfg: ProjectConfig) -> None:
        d = cfg.dataset
        self.dataset_panel.set_project(list(d.folders), self.project_file.parent if self.project_file else None,
                                       resolution=d.resolution, caption_extension=d.caption_extension,
                                       default_repeats=d.repeats)

    def _dataset_folders_changed(self, folders: list[str]) -> None:
        """Folders added or removed in the Dataset area are the project's dataset folders (Train form too)."""
        editor = self.train_panel.form.editor("dataset", "folders")
        if list(editor.value()) != list(folders):
            editor.set_value(tuple(folders))

    def _sync_dataset_panel(self) -> None:
        """Dataset settings edited in the Train form (folders, resolution, captions) reach the Dataset area."""
        try:
            cfg = self.train_panel.form.config()
        except FormError:
            return
        d, panel = cfg.dataset, self.dataset_panel
        if list(d.folders) != panel.folder_strings() or d.caption_extension != panel.caption_extension \
                or d.repeats != panel.default_repeats:
            self._show_dataset(cfg)
        elif d.resolution != panel.resolution:
            panel.set_resolution(d.resolution)

    def _project_file_chosen(self, path: Path) -> None:
        self.project_file = Path(path).resolve()
        self._update_title()

    def _mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self._update_title()

    def _update_title(self) -> None:
        name = self.project_file.name if self.project_file else "untitled project"
        folder = f" — {self.project_file.parent}" if self.project_file else ""
        self.setWindowTitle(f"{'*' if self.dirty else ''}{name}{folder} — LoRA Studio")

    # ---------------------------------------------------------------------------------------------
    # worker
    def _send(self, command: p.Command) -> None:
        """The Train panel's control commands (Pause, Stop, Save now…); jobs go through `self.jobs`."""
        if not self.worker.send(command):
            self.train_panel.command_not_sent(command, self.worker.detail or self.worker.state)

    def restart_worker(self) -> None:
        if self._closing:
            return
        self.statusBar().showMessage("Restarting the worker…", 4000)
        self.worker.restart()

    def _on_worker_state(self, state: str, detail: str) -> None:
        colour = STATE_COLOURS.get(state, "#888888")
        self.worker_label.setText(f"<span style='color:{colour}'>●</span> Worker: {state}")
        self.worker_label.setToolTip(detail or state)
        self.train_panel.set_worker_state(state, detail)
        if state == "ready":
            self._restarts.clear()
            if self.worker.info is not None:
                self.device_ready(self.worker.info.device)
        if self._closing and state in ("stopped", "dead"):
            QTimer.singleShot(0, self._quit_now)
        elif state == "dead":
            self._restart_after_death(detail)

    def _probed(self, hw: Hardware) -> None:
        self._probe = hw
        if self.worker.info is not None:  # the worker was quicker: now the VRAM is known too
            self.device_ready(self.worker.info.device)

    def device_ready(self, device: str) -> None:
        """The worker named its device: defaults that fit it for the mixer and a new, unedited project."""
        defaults = defaults_for(device_from_ready(device, self._probe))
        self.train_panel.preflight.set_device(defaults.device)
        self.mixer_panel.set_preview_defaults(defaults.preview)
        if self._new_project and not self.dirty and not self.train_panel.run_active:
            self._new_project = False
            self.train_panel.apply_machine_defaults(defaults)
            self.dirty = False  # the new project's starting point, not an edit to save

    def _restart_after_death(self, detail: str) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60] + [now]
        if len(self._restarts) > MAX_QUICK_RESTARTS:
            self.statusBar().showMessage(f"The worker keeps stopping ({detail}); use Worker ▸ Restart worker")
            return
        self.statusBar().showMessage(f"{detail[:1].upper()}{detail[1:]}; starting a new worker…", 8000)
        QTimer.singleShot(300, lambda: None if self._closing else self.worker.start())

    # ---------------------------------------------------------------------------------------------
    # closing
    def confirm_stop_run(self) -> bool:
        """Asked when the window closes during a run. Tests replace it."""
        answer = QMessageBox.question(
            self, "A run is in progress",
            "A training run is in progress. Save a checkpoint, stop the run and quit?\n\n"
            "You can resume the run from that checkpoint later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def confirm_discard_changes(self) -> bool:
        """Asked when the window closes with unsaved settings. Tests replace it."""
        answer = QMessageBox.question(
            self, "Unsaved settings", "The project's settings have changed. Save them before quitting?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        return answer == QMessageBox.StandardButton.Discard

    def confirm_quit(self) -> bool:
        """At most one question on the way out: a run in progress, or else unsaved settings."""
        if self.train_panel.run_active:
            return self.confirm_stop_run()
        return not self.dirty or self.confirm_discard_changes()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Quit always works: one confirmation, then every job is stopped (a run saves a checkpoint), the
        worker gets QUIT_GRACE_S to exit and is killed after that, and the window closes by QUIT_LIMIT_S
        whatever the worker does. Nothing starts a worker on the way out (`jobs.shut_down`)."""
        if self._close_ready:
            self._save_settings()
            self.dataset_panel.shutdown()  # its thumbnail threads; pending caption typing is saved first
            self.mixer_panel.close()  # removes its temporary preview folder
            event.accept()
            return
        event.ignore()
        if self._closing:
            return  # already on the way out: the worker's exit, or the time limit, closes the window
        if not self.confirm_quit():
            return  # "Cancel": nothing changed, the next Ctrl+Q asks again
        self._closing = True
        self.jobs.shut_down()
        if self.train_panel.run_active:
            self.train_panel.request_save_and_stop()
            self.statusBar().showMessage("Saving a checkpoint and stopping the run…")
        if not self.worker.running:
            self._quit_now()
            return
        self.worker.shutdown(timeout_s=QUIT_GRACE_S)
        QTimer.singleShot(int(QUIT_LIMIT_S * 1000), self._quit_now)

    def _quit_now(self) -> None:
        if self._close_ready:
            return
        self.worker.kill()  # still there after its grace: a hung job must not keep the app open
        self._close_ready = True
        QTimer.singleShot(0, self.close)  # not from inside closeEvent: Qt ignores a nested close()

    # ---------------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        if (geometry := self.settings.value("mainWindow/geometry")) is None:
            self.resize(1400, 900)
        else:
            self.restoreGeometry(geometry)
        for key, restore in (("mainWindow/state", self.restoreState),
                             ("trainPanel/splitter", self.train_panel.splitter.restoreState)):
            if (state := self.settings.value(key)) is not None:
                restore(state)

    def _save_settings(self) -> None:
        self.settings.setValue("mainWindow/geometry", self.saveGeometry())
        self.settings.setValue("mainWindow/state", self.saveState())
        self.settings.setValue("trainPanel/splitter", self.train_panel.splitter.saveState())
        self.settings.sync()
