""""Before you start": the pre-flight summary of the settings, updated as they change.

Every warning names what to change. On a CPU a notice says how slow it will be, and Start asks once per
settings before a long run (`confirm_start`). Counting the images runs on the thread pool.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QLabel, QMessageBox, QScrollArea, QVBoxLayout, QWidget

from studio.config import ProjectConfig
from studio.machine_defaults import Device, defaults_for
from studio.preflight_summary import (Gathered, PreflightSummary, epochs_text, gather, rough_duration,
                                      summarize)
from ui.background import run_in_background
from ui.layout import fill
from ui.theme import scaled_font, set_role
from ui.widgets.config_form import label_for

DEBOUNCE_MS = 300
CONFIRM_ABOVE_S = 10 * 60  # a CPU run longer than this asks before it starts


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "empty"


class PreflightView(QScrollArea):
    """A page of the Train panel's lower tabs, so it takes no height from the charts at 1024×700; its first
    line is also emitted (`headline_changed`) for the line under Start."""

    headline_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, *,
                 family_of: Callable[[], str | None] = lambda: None) -> None:
        super().__init__(parent, widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.family_of = family_of  # the base model's family as the model picker detected it
        self.device: Device | None = None
        self.summary: PreflightSummary | None = None
        self._cfg: ProjectConfig | None = None
        self._project_file: Path | None = None
        self._preset: str | None = None  # a preset applied in this session
        self._gathered: Gathered | None = None
        self._gen = 0
        self._confirmed: object = None  # the settings the user already said "Start anyway" to
        page = QWidget()
        self.header = QLabel(wordWrap=True, font=scaled_font(self.font(), 1.1, bold=True))
        self.notice = set_role(QLabel(wordWrap=True, visible=False), "banner-warning")
        self.notice.setContentsMargins(8, 6, 8, 6)
        self.body = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText,
                           textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        fill(QVBoxLayout(page), self.header, self.notice, self.body, None).setContentsMargins(8, 6, 8, 6)
        self.setWidget(page)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self._gather)
        self._set_header("Counting the images…")

    # ---------------------------------------------------------------------------------------------
    def set_device(self, device: Device | None) -> None:
        self.device = device
        self._render()

    def set_preset(self, name: str) -> None:
        """A preset was applied: differences are listed against it from the next count on."""
        self._preset = name
        self._timer.start()

    def run_state(self, state: str) -> None:
        """Back to idle: count again, with the step time the run just measured."""
        if state == "idle":
            self._gather()

    def update_config(self, cfg: ProjectConfig, project_file: Path | None) -> None:
        """The form changed: recount the images after a short pause (typing does not rescan per key)."""
        if project_file != self._project_file:
            self._preset = None  # another project: its own preset, if it names one
        self._cfg, self._project_file = cfg, project_file
        self._render()  # the settings-only numbers at once; the counts follow
        self._timer.start()

    def _gather(self) -> None:
        cfg, project_file = self._cfg, self._project_file
        if cfg is None:
            return
        self._gen += 1
        gen = self._gen
        run_in_background(gather, cfg, project_file, self._preset, on_done=lambda g: self._gathered_ready(gen, g),
                          on_error=lambda exc: self._gather_failed(gen, exc))

    def _gathered_ready(self, gen: int, gathered: Gathered) -> None:
        if gen == self._gen:
            self._gathered = gathered
            self._render()

    def _gather_failed(self, gen: int, exc: BaseException) -> None:
        if gen == self._gen:
            self._gathered = None
            self._set_header(f"The images could not be counted ({exc})")

    # ---------------------------------------------------------------------------------------------
    def _reference(self, gathered: Gathered) -> tuple[ProjectConfig, str]:
        if gathered.preset is not None:
            return gathered.preset
        if self.device is not None:
            return defaults_for(self.device).apply(ProjectConfig()), "this machine's defaults"
        return ProjectConfig(), "the defaults"

    def _render(self) -> None:
        cfg, gathered = self._cfg, self._gathered
        if cfg is None or gathered is None:
            return
        device = self.device or Device("cpu", "CPU")
        family = cfg.model.family if cfg.model.family != "auto" else self.family_of()
        reference, name = self._reference(gathered)
        self.summary = s = summarize(cfg, device, gathered.folders, regularization=gathered.regularization,
                                     reference=reference, reference_name=name, family=family,
                                     measured=gathered.measured, label=label_for)
        where = "if on the CPU" if self.device is None else "on the CPU" if device.on_cpu else "on the GPU"
        epochs = f"{s.epochs:,.0f} epochs" if s.epochs >= 10 else epochs_text(s.epochs).split(" (")[0]
        self._set_header(f"{s.max_steps:,} steps · {epochs if s.images else 'no images yet'} · about "
                         f"{rough_duration(s.estimate.total_s)} {where}")
        self.notice.setText(s.cpu_notice or "")
        self.notice.setVisible(bool(s.cpu_notice))
        self.body.setText(self._details(s))

    def _details(self, s: PreflightSummary) -> str:
        e = html.escape
        rows = [("Steps", s.steps_line()),
                ("Batch", f"{s.batch_size}" + (f" × {s.accumulation} accumulated" if s.accumulation > 1 else "")),
                ("Resolution", s.resolution),
                ("Trains", "; ".join(s.trained)),
                ("Time", f"about {rough_duration(s.estimate.total_s)} — {rough_duration(s.estimate.step_s)} a "
                         f"step, {s.estimate.basis}")]
        if s.differences:
            changed = "; ".join(f"{label_for(d.section, d.key)} {_value(d.value)} instead of {_value(d.reference)}"
                                for d in s.differences)
            rows.append((f"Not as in {s.reference_name}", changed))
        else:
            rows.append(("Settings", f"as in {s.reference_name}"))
        text = "".join(f"<p style='margin:0 0 4px 0'><b>{e(k)}:</b> {e(v)}</p>" for k, v in rows)
        warnings = "".join(f"<li>{e(w.text)}</li>" for w in s.warnings)
        return text + (f"<p style='margin:6px 0 0 0'><b>Check before you start:</b></p>"
                       f"<ul style='margin:0'>{warnings}</ul>" if warnings else "")

    def _set_header(self, text: str) -> None:
        self.header.setText(text)
        self.headline_changed.emit(text)

    # ---------------------------------------------------------------------------------------------
    def confirm_start(self) -> bool:
        """Before a run: on a CPU, a run longer than a few minutes is confirmed once for these settings."""
        s = self.summary
        if s is None or not s.cpu_notice or s.estimate.total_s < CONFIRM_ABOVE_S:
            return True
        key = (self._cfg, self.device)
        if key != self._confirmed and not self.ask("Training on the CPU", s.cpu_notice):
            return False
        self._confirmed = key
        return True

    def ask(self, title: str, text: str) -> bool:
        """Start anyway / Back. Tests replace it."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self)
        start = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Back", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is start
