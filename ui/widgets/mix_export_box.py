"""Export of a mix: a merged LoRA (exact concatenation or SVD to a rank) or a baked checkpoint."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGroupBox, QLabel, QPushButton, QRadioButton,
                               QVBoxLayout, QWidget)

from ui.layout import fill, row
from ui.widgets.build import ask_save_path, rank_box
from ui.widgets.compat_report_view import CompatReportView
from ui.widgets.open_folder_button import OpenFolderButton


class MixExportBox(QGroupBox):
    export_requested = Signal(object, str, str)  # rank (None: concatenate), dtype, output path
    bake_requested = Signal(str)  # output path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Export", parent)
        self.last_output: Path | None = None
        self.ask_path = partial(ask_save_path, self)  # replaceable in tests (no file dialog)
        self.concat = QRadioButton("Exact (concatenate ranks)", checked=True)
        self.svd = QRadioButton("SVD to rank")
        group = QButtonGroup(self)
        group.addButton(self.concat)
        group.addButton(self.svd)
        self.rank = rank_box(enabled=False)
        self.svd.toggled.connect(self.rank.setEnabled)
        self.dtype = QComboBox(toolTip="precision of the merged LoRA file")
        self.dtype.addItems(["fp16", "bf16", "fp32"])
        self.export_button = QPushButton("Export merged LoRA…", clicked=self._export)
        self.bake_button = QPushButton("Bake into checkpoint…", clicked=self._bake,
                                       toolTip="Apply the mix to the base model and save a new checkpoint "
                                               "(.safetensors)")
        self.open_folder = OpenFolderButton(lambda: self.last_output)
        self.result = QLabel(wordWrap=True)
        self.compat = CompatReportView()  # which WebUIs load the merged file as trained
        fill(QVBoxLayout(self), row(self.concat, self.svd, self.rank, QLabel("Precision"), self.dtype, None),
             row(self.export_button, self.bake_button, self.open_folder, None), self.result, self.compat)

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
