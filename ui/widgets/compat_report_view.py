"""Which WebUIs load an exported LoRA as trained: one line per loader, read from its `<name>.compat.json`.

Where a loader cannot render the file faithfully it offers "Save a plain-LoRA copy…", made by the worker
(`mix_plain` job), never in the window. The sidecar is read on the thread pool: the export folder may be
on a slow or network drive.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from studio.formats.compat_report import CompatReport, read_sidecar
from ui.background import run_in_background
from ui.layout import fill, flat, row
from ui.widgets.build import ask_save_path, rank_box

MARKS = {"ok": "✓", "wrong": "✗", "partial": "✗", "refused": "✗"}


class CompatReportView(QWidget):
    plain_copy_requested = Signal(str, int, str)  # source LoRA, rank, output path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: Path | None = None
        self.report: CompatReport | None = None
        self.ask_path = partial(ask_save_path, self)  # replaceable in tests (no file dialog)
        self.lines = QLabel(wordWrap=True)
        self.rank_label = QLabel("Rank")
        self.rank = rank_box("rank of the plain copy: higher is closer to the original, and bigger")
        self.plain_button = QPushButton("Save a plain-LoRA copy…", clicked=self._plain, toolTip=(
            "The file's full ΔW (DoRA magnitude included) refactored by SVD into a plain "
            "LoRA that every loader reads; the relative error is reported"))
        self.copy_result = QLabel(wordWrap=True)
        fill(flat(QVBoxLayout(self)), self.lines, row(self.plain_button, self.rank_label, self.rank, None),
             self.copy_result)
        self.clear()

    # ---------------------------------------------------------------------------------------------
    def show_file(self, lora_path: str | Path) -> None:
        path = Path(lora_path)
        self.source = path
        self.copy_result.setText("")
        run_in_background(read_sidecar, path, on_done=lambda report: self._show_report(path, report))

    def _show_report(self, path: Path, report: CompatReport | None) -> None:
        if path != self.source:  # an older file's report arriving late
            return
        self.report = report
        self.setVisible(True)
        if report is None:
            self.lines.setText("No compatibility report beside this file (lora-studio inspect --loaders shows one).")
            self._set_offer(False)
            return
        self.lines.setText("\n".join(f"{MARKS[v.status]} {v.line()}" for v in report.verdicts))
        self.lines.setToolTip("\n".join(n for v in report.verdicts for n in v.notes))
        self._set_offer(report.plain_copy_advised)

    def clear(self) -> None:
        """Nothing to report (the last output is not a LoRA, e.g. a baked checkpoint)."""
        self.source, self.report = None, None
        self.lines.setText("")
        self.lines.setToolTip("")
        self.copy_result.setText("")
        self._set_offer(False)
        self.setVisible(False)  # an empty report takes no room (the window must fit 1024×700)

    def _set_offer(self, visible: bool) -> None:
        for w in (self.plain_button, self.rank_label, self.rank):
            w.setVisible(visible)

    # ---------------------------------------------------------------------------------------------
    def _plain(self) -> None:
        if self.source is None:
            return
        suggestion = str(self.source.with_name(f"{self.source.stem}-plain-r{self.rank.value()}.safetensors"))
        path = self.ask_path("Save a plain-LoRA copy", suggestion)
        if path:
            self.set_busy(True)
            self.copy_result.setText("Making the plain copy in the worker…")
            self.plain_copy_requested.emit(str(self.source), self.rank.value(), path)

    def set_busy(self, busy: bool) -> None:
        self.plain_button.setEnabled(not busy)

    def show_copy_result(self, path: str, summary: str) -> None:
        self.set_busy(False)
        self.copy_result.setText(f"Wrote {path}\n{summary}")

    def show_copy_error(self, error: str, hint: str = "") -> None:
        self.set_busy(False)
        self.copy_result.setText(f"The plain copy failed: {error}" + (f"\n{hint}" if hint else ""))
