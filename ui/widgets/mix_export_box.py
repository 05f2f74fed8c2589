"""Export of a mix: a merged LoRA (exact concatenation or SVD to a rank) or a baked checkpoint."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from ui.widgets.compat_report_view import CompatReportView
from ui.widgets.open_folder_button import OpenFolderButton


class MixExportBox(QGroupBox):
    export_requested = Signal(object, str, str)  # rank (None: concatenate), dtype, output path
    bake_requested = Signal(str)  # output path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Export", parent)
        self.last_output: Path | None = None
        self.ask_path = self._ask_path  # replaceable in tests (no file dialog)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.concat = QRadioButton("Exact (concatenate ranks)")
        self.svd = QRadioButton("SVD to rank")
        self.concat.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.concat)
        group.addButton(self.svd)
        self.rank = QSpinBox()
        self.rank.setRange(1, 1024)
        self.rank.setValue(32)
        self.rank.setEnabled(False)
        self.svd.toggled.connect(self.rank.setEnabled)
        self.dtype = QComboBox()
        self.dtype.addItems(["fp16", "bf16", "fp32"])
        self.dtype.setToolTip("precision of the merged LoRA file")
        for w in (self.concat, self.svd, self.rank, QLabel("Precision"), self.dtype):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export merged LoRA…")
        self.bake_button = QPushButton("Bake into checkpoint…")
        self.bake_button.setToolTip("Apply the mix to the base model and save a new checkpoint (.safetensors)")
        self.open_folder = OpenFolderButton(lambda: self.last_output)
        for b in (self.export_button, self.bake_button, self.open_folder):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        self.compat = CompatReportView()  # which WebUIs load the merged file as trained
        self.compat.clear()
        layout.addWidget(self.compat)
        self.export_button.clicked.connect(self._export)
        self.bake_button.clicked.connect(self._bake)

    def _ask_path(self, title: str, suggestion: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, suggestion, "safetensors (*.safetensors)")
        return path

    def _export(self) -> None:
        path = self.ask_path("Export merged LoRA", "mix.safetensors")
        if path:
            rank = self.rank.value() if self.svd.isChecked() else None
            self.export_requested.emit(rank, self.dtype.currentText(), path)

    def _bake(self) -> None:
        path = self.ask_path("Bake into checkpoint", "mixed-checkpoint.safetensors")
        if path:
            self.bake_requested.emit(path)

    def show_result(self, path: str, summary: str, *, merged: bool = False) -> None:
        """`merged`: a merged LoRA, whose per-loader report (its sidecar) is shown below; not a baked checkpoint."""
        self.last_output = Path(path)
        self.result.setText(f"Wrote {path}\n{summary.splitlines()[0] if summary else ''}")
        self.open_folder.refresh()
        if merged:
            self.compat.show_file(path)
        else:
            self.compat.clear()

    def set_busy(self, busy: bool) -> None:
        self.export_button.setEnabled(not busy)
        self.bake_button.setEnabled(not busy)
