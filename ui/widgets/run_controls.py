"""Start / Pause / Stop / Save now / Sample now, and the progress line (step, epoch, it/s, ETA).

Which buttons are enabled follows from one `set_state` call, so the panel's state machine is the single
place that decides what the user may do.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from studio.events import Progress
from ui.jobs.job import format_duration
from ui.layout import fill, flat, row
from ui.widgets.build import button

PAINT_MS = 250

# run state → buttons enabled (start, pause, stop, save, sample)
_ENABLED = {
    "idle": (True, False, False, False, False),
    "checking": (False, False, False, False, False),
    "starting": (False, False, True, False, False),
    "running": (False, True, True, True, True),
    "paused": (False, True, True, True, True),
    "stopping": (False, False, False, False, False),
}


class RunControls(QWidget):
    start_clicked = Signal()
    pause_clicked = Signal()
    resume_clicked = Signal()
    stop_clicked = Signal()
    save_clicked = Signal()
    sample_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self._buttons = (
            button("Start", "Check the settings and start training", self.start_clicked),
            button("Pause", "Pause after the current step (the model stays loaded)", self._pause_or_resume),
            button("Stop", "Stop after the current step; a checkpoint and a LoRA file are saved",
                   self.stop_clicked),
            button("Save now", "Save a checkpoint and a LoRA file after the current step", self.save_clicked),
            button("Sample now", "Render the preview prompts after the current step", self.sample_clicked))
        self.start_button, self.pause_button, self.stop_button, self.save_button, self.sample_button = \
            self._buttons
        self.start_button.setDefault(True)
        self.bar = QProgressBar(minimum=0, maximum=1, value=0, format="%v / %m steps")
        self.details = QLabel("Not running.")
        fill(flat(QVBoxLayout(self)), row(*self._buttons, None), self.bar, self.details)
        self._pending: Progress | None = None
        self._paint = QTimer(self, interval=PAINT_MS, timeout=self._apply_progress)
        self.set_state("idle")

    def _pause_or_resume(self) -> None:
        (self.resume_clicked if self.state == "paused" else self.pause_clicked).emit()

    def set_state(self, state: str) -> None:
        self.state = state
        for widget, enabled in zip(self._buttons, _ENABLED[state]):
            widget.setEnabled(enabled)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")

    def reset(self, total: int) -> None:
        """Before any run: an empty bar sized for the configured number of steps."""
        self._show(0, total, f"Not running. {total:,} steps configured.")

    def begin(self, total: int, start_step: int = 0) -> None:
        self._show(start_step, total, f"Step {start_step} / {total} — loading the model and the dataset…")

    def _show(self, step: int, total: int, text: str) -> None:
        self._pending = None
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(step)
        self.details.setText(text)

    def show_progress(self, e: Progress) -> None:
        """Shown at most every PAINT_MS: QProgressBar repaints synchronously on every setValue, and a fast
        GPU run reports dozens of steps a second."""
        first = self._pending is None and not self._paint.isActive()
        self._pending = e
        if first:
            self._apply_progress()
            self._paint.start()

    def _apply_progress(self) -> None:
        e, self._pending = self._pending, None
        if e is None:
            self._paint.stop()
            return
        loss = f"{e.loss:.4f}" if e.loss == e.loss else "nan"
        mem = f" · {e.gpu_mem_mb / 1024:.1f} GiB GPU" if e.gpu_mem_mb else ""
        self._show(e.step, e.total, f"Step {e.step} / {e.total} · epoch {e.epoch} · {e.it_per_s:.2f} it/s · "
                   f"ETA {format_duration(e.eta_s)} · loss {loss} (smoothed {e.smoothed_loss:.4f}){mem}")

    def set_details(self, text: str) -> None:
        self._apply_progress()  # a pending step first, so the message is not overwritten by it
        self.details.setText(text)
