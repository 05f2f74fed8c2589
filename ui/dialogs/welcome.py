"""The welcome screen: the first thing a new user sees, and File → Welcome Screen later.

It answers what a first run asks: what can I do here, what can this computer do (its GPU, or plainly: the
CPU, slowly), and where do I start (the preset recommended for that VRAM). It only prepares a project file;
the slow work (the demo project in the worker, hardware detection in a child) stays off the GUI thread.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QFileDialog, QFrame, QGroupBox, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from studio.config import preset_names
from studio.hardware import Hardware, Recommendation, detect_in_child, recommend
from studio.job_requests import DemoProjectRequest
from studio.paths import demo_project_dir
from studio.project import create_project
from ui.app_icon import app_icon
from ui.background import run_in_background
from ui.settings import AppSettings
from ui.jobs import DONE, QUEUED, Job, JobManager
from ui.layout import column, fill, row
from ui.theme import scaled_font, set_role

Kind = Literal["demo", "new", "open", "recent"]
DEFAULTS = "Default settings"  # a new project with no preset: what a CPU-only machine gets


@dataclass(frozen=True)
class WelcomeChoice:
    kind: Kind
    project_file: Path


def prepare_demo_project(jobs: JobManager, *, on_done: Callable[[Path], None],
                         on_error: Callable[[str, str], None]) -> Job:
    """The demo project in the user's data folder, built by the worker (its tiny model needs diffusers, which
    the window never imports); then `on_done(project_file)` or `on_error(error, hint)`, once."""
    job = jobs.submit(DemoProjectRequest(folder=str(demo_project_dir())), "demo project")

    def ended(state: str) -> None:
        if state == DONE and job.outputs:
            on_done(Path(job.outputs[0]))
        elif state == DONE:
            on_error("the demo project job ended without a project file", "run it again")
        else:
            on_error(job.error or job.detail or "cancelled", job.hint)

    job.ended.connect(ended)
    if not job.active:  # refused at once (the app is quitting)
        ended(job.state)
    return job


class WelcomeDialog(QDialog):
    chosen = Signal(object)  # WelcomeChoice, just before the dialog closes with accept()

    def __init__(self, settings: AppSettings, parent: QWidget | None = None, *,
                 hardware: Hardware | None = None, jobs: JobManager | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs  # the window's job queue: the demo project is built by the worker
        self.setWindowTitle("Welcome to LoRA Studio")
        self.setWindowIcon(app_icon())
        self.settings = settings
        self.choice: WelcomeChoice | None = None
        self.hardware: Hardware | None = None
        self.recommendation: Recommendation | None = None
        self._build()
        self._fill_recent()
        if hardware is not None:
            self.show_hardware(hardware)
        else:
            run_in_background(lambda: detect_in_child().hardware, on_done=self.show_hardware,
                              on_error=self._detection_failed)

    # ---------------------------------------------------------------------------------------------
    def _build(self) -> None:
        em = self.fontMetrics().height()
        icon = QLabel(pixmap=app_icon().pixmap(em * 4, em * 4))
        title = QLabel("Welcome to LoRA Studio", font=scaled_font(self.font(), 1.8, bold=True))
        subtitle = self._hint("Teach Stable Diffusion a person, a character or a style from your own "
                              "pictures, then mix the results — no terminal needed.")
        head = row((icon, 0, Qt.AlignmentFlag.AlignTop), (column(title, subtitle), 1))

        # what this computer can do
        self.hardware_banner = set_role(QFrame(), "banner-info")
        self.hardware_title = QLabel("Checking this computer…", font=scaled_font(self.font(), 1.1, bold=True),
                                     wordWrap=True)
        self.hardware_detail = QLabel("Looking for an NVIDIA GPU.", wordWrap=True)
        fill(QVBoxLayout(self.hardware_banner), self.hardware_title, self.hardware_detail)

        # start something
        self.demo_button = set_role(QPushButton(
            "Open the demo project", clicked=self.open_demo,
            toolTip="Bundled photos and a tiny model made on the spot: it trains in about a minute on any "
                    "computer and shows every step. Nothing is downloaded."), "primary")
        demo_hint = self._hint("Bundled photos and a tiny model made on the spot: the whole flow in about a "
                               "minute, on any computer, with nothing to download.")
        self.new_button = QPushButton("New project…", clicked=self.new_project, toolTip="Choose an empty "
                                      "folder; the project starts from the preset shown here")
        self.preset = QComboBox(toolTip="Starting settings for the new project; you can change every one "
                                        "later")
        self.preset.addItem(DEFAULTS, "")
        for name in preset_names():
            if name != "demo":  # the demo's tiny 64 px settings only suit the demo's tiny model (issue 18)
                self.preset.addItem(name, name)
        new_hint = self._hint("A folder with an empty dataset/ inside for your pictures.")
        self.open_button = QPushButton("Open a project…", toolTip="Open an existing project.toml",
                                       clicked=self.open_existing)
        open_hint = self._hint("A project.toml you made before.")
        steps = self._hint("<b>How it works</b><br>1. <b>Dataset</b>: add 15–40 pictures and describe each "
                           "one.<br>2. <b>Train</b>: pick a base model and press Train; previews show how it "
                           "learns.<br>3. <b>Mix</b>: blend LoRAs and export one file for your favourite "
                           "Stable Diffusion app.")
        start = column(self.demo_button, demo_hint, round(em * 0.5),
                       row(self.new_button, QLabel("Preset:"), (self.preset, 1)), new_hint, round(em * 0.5),
                       row(self.open_button, (open_hint, 1)), em, steps, None)
        start.setSpacing(round(em * 0.4))
        start_box = QGroupBox("Start")
        start_box.setLayout(start)

        # recent projects
        self.recent = QListWidget(toolTip="Double-click to open", itemActivated=self._recent_activated,
                                  itemDoubleClicked=self._recent_activated)
        self.recent_empty = self._hint("No recent projects yet. Projects you open appear here.")
        self.recent_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_recent_button = QPushButton("Open", clicked=self.open_selected_recent)
        self.recent.currentRowChanged.connect(lambda row: self.open_recent_button.setEnabled(row >= 0))
        recent_box = QGroupBox("Recent projects")
        recent_box.setLayout(column((self.recent, 1), self.recent_empty,
                                    (self.open_recent_button, 0, Qt.AlignmentFlag.AlignRight)))

        self.status = QLabel(wordWrap=True, visible=False)
        self.show_at_startup = QCheckBox("Show this window when LoRA Studio starts",
                                         checked=self.settings.show_welcome)
        close = QPushButton("Close", toolTip="Continue with an empty project", clicked=self.reject)

        columns = row((start_box, 3), (recent_box, 2))
        fill(QVBoxLayout(self, spacing=round(em * 0.7)), head, self.hardware_banner, (columns, 1),
             self.status, row((self.show_at_startup, 1), close))
        self.setMinimumWidth(em * 44)
        self.resize(em * 58, em * 40)

    @staticmethod
    def _hint(text: str) -> QLabel:
        return set_role(QLabel(text, wordWrap=True), "muted")

    def _fill_recent(self) -> None:
        for path in self.settings.existing_recent():
            item = QListWidgetItem(f"{path.parent.name}    {path.parent.parent}")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.recent.addItem(item)
        has_any = self.recent.count() > 0
        self.recent.setVisible(has_any)
        self.recent_empty.setVisible(not has_any)
        self.open_recent_button.setVisible(has_any)
        self.open_recent_button.setEnabled(False)

    # ---------------------------------------------------------------------------------------------
    # hardware
    def show_hardware(self, hw: Hardware) -> None:
        self.hardware = hw
        rec = self.recommendation = recommend(hw)
        if hw.best_gpu is None:
            set_role(self.hardware_banner, "banner-warning")
            self.hardware_title.setText("No NVIDIA GPU found: training will run on the CPU and will be slow.")
            why = f"{html.escape(hw.error)} " if hw.error else ""
            apple = ("This Mac's GPU is not used for training yet. " if hw.apple_gpu else "")
            self.hardware_detail.setText(
                f"{why}{apple}Training a real Stable Diffusion model on the CPU takes hours to days; the demo "
                f"project trains in about a minute.<br>Recommended preset: <b>{rec.preset}</b> · "
                f"<small>CPU: {html.escape(hw.cpu_name)} ({hw.cpu_count} threads)</small>")
        else:
            set_role(self.hardware_banner, "banner-info")
            self.hardware_title.setText(f"GPU: {hw.summary()}")
            self.hardware_detail.setText(f"Recommended preset: <b>{rec.preset}</b> — {html.escape(rec.reason)}")
        index = max(self.preset.findData(rec.preset), 0)  # the demo preset is not one for new projects
        self.preset.setCurrentIndex(index)
        for i in range(self.preset.count()):
            name = self.preset.itemData(i) or DEFAULTS
            self.preset.setItemText(i, f"{name} (recommended)" if i == index else name)

    def _detection_failed(self, exc: BaseException) -> None:
        self.show_hardware(Hardware((), None, "unknown CPU", 1, error=f"Hardware detection failed: {exc}."))

    # ---------------------------------------------------------------------------------------------
    # choices
    def _busy(self, message: str | None) -> None:
        for widget in (self.demo_button, self.new_button, self.open_button, self.open_recent_button,
                       self.recent):
            widget.setEnabled(message is None)
        if message is None:
            self.unsetCursor()
            self.status.hide()
        else:
            self.setCursor(Qt.CursorShape.BusyCursor)
            self._say("muted", message)

    def tell(self, text: str) -> None:
        """A line above the choices, e.g. that the last project is no longer where it was."""
        self._say("error", text)

    def _say(self, role: str, text: str) -> None:
        set_role(self.status, role)
        self.status.setText(text)
        self.status.show()

    def _failed(self, what: str, exc: BaseException | str, hint: str = "") -> None:
        self._busy(None)
        hint = hint or getattr(exc, "hint", "")
        self._say("error", f"{what}: {exc}" + (f"\n{hint}" if hint else ""))

    def _choose(self, kind: Kind, project_file: Path) -> None:
        self._busy(None)
        self.choice = WelcomeChoice(kind, Path(project_file))
        self.chosen.emit(self.choice)
        self.accept()

    def open_demo(self) -> None:
        if self.jobs is None:
            self._failed("Could not prepare the demo project", "the app's worker is not available",
                         "restart LoRA Studio")
            return
        self._busy("Preparing the demo project (the first time takes a few seconds)…")
        job = self._demo_job = prepare_demo_project(
            self.jobs, on_done=lambda path: self._choose("demo", path),
            on_error=lambda error, hint: self._failed("Could not prepare the demo project", error, hint))
        job.detail_changed.connect(lambda _detail: self._demo_waits(job))
        self._demo_waits(job)

    def _demo_waits(self, job: Job) -> None:
        """A demo asked for while a training runs waits its turn: say so (it is not stuck)."""
        if job.state == QUEUED and job.detail and job is self._demo_job:
            self._busy(f"Preparing the demo project ({job.detail})…")

    def new_project(self) -> None:
        folder = self.ask_new_project_folder()
        if folder is None:
            return
        preset, output_dir = self.preset.currentData(), self.settings.output_folder or None
        self._busy(f"Creating a project in {folder}…")
        run_in_background(lambda: create_project(folder, preset, output_dir=output_dir),
                          on_done=lambda path: self._choose("new", path),
                          on_error=lambda exc: self._failed("Could not create the project", exc))

    def open_existing(self) -> None:
        path = self.ask_project_file()
        if path is not None:
            self._choose("open", path)

    def open_selected_recent(self) -> None:
        item = self.recent.currentItem()
        if item is not None:
            self._recent_activated(item)

    def _recent_activated(self, item: QListWidgetItem) -> None:
        if self.recent.isEnabled():
            self._choose("recent", Path(item.data(Qt.ItemDataRole.UserRole)))

    # file dialogs: separate methods so tests can answer them
    def ask_new_project_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project",
                                                  self.settings.last_folder)
        return Path(folder) if folder else None

    def ask_project_file(self) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", self.settings.last_folder,
                                              "LoRA Studio project (*.toml)")
        return Path(path) if path else None

    def settings_after(self) -> AppSettings:
        """The settings with this dialog's effects: the start-up checkbox, and the chosen project as recent."""
        s = replace(self.settings, show_welcome=self.show_at_startup.isChecked())
        if self.choice is None:
            return s
        project = self.choice.project_file
        return replace(s.with_recent(project), last_project=str(project.resolve()),
                       last_folder=str(project.parent))
