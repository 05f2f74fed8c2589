"""File → Settings. It hands back a new `AppSettings` (`edited()`) and the caller saves it, so the dialog is
tested without the disk; recent projects and window state are not shown, and Restore Defaults keeps them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QGroupBox, QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from studio.paths import default_output_dir
from ui.layout import column, row
from ui.settings import AppSettings, PreviewDefaults

THEME_LABELS = {"system": "Same as the system", "light": "Light", "dark": "Dark"}


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._original = settings

        self.theme = QComboBox()
        for key, label in THEME_LABELS.items():
            self.theme.addItem(label, key)
        self.show_welcome = QCheckBox("Show the welcome screen when LoRA Studio starts")
        look = QFormLayout()
        look.addRow("Theme:", self.theme)
        look.addRow(self.show_welcome)

        self.output_folder = QLineEdit(placeholderText=str(default_output_dir()), toolTip="Where new projects"
                                       " save their exported LoRAs. Empty: the folder shown.")
        browse_out = QPushButton("Browse…", clicked=self._browse_output)
        self.model_folders = QListWidget()
        self.model_folders.setToolTip("Folders searched for base models (.safetensors files and diffusers folders)")
        self.add_model_folder = QPushButton("Add…", clicked=self._browse_model_folder)
        self.remove_model_folder = QPushButton(
            "Remove", clicked=lambda: self.model_folders.takeItem(self.model_folders.currentRow()))
        self.model_folders.currentRowChanged.connect(
            lambda row: self.remove_model_folder.setEnabled(row >= 0))
        folders = QFormLayout()
        folders.addRow("Default output folder:", row((self.output_folder, 1), browse_out))
        folders.addRow("Model folders:", row((self.model_folders, 1),
                                             column(self.add_model_folder, self.remove_model_folder, None)))

        self.prompt = QLineEdit()
        self.negative_prompt = QLineEdit()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.steps = QSpinBox(minimum=1, maximum=200)
        self.width_px, self.height_px = (QSpinBox(minimum=64, maximum=4096, singleStep=64, suffix=" px")
                                         for _ in range(2))
        preview = QFormLayout()
        for label, field in (("Prompt:", self.prompt), ("Negative prompt:", self.negative_prompt),
                             ("Seed:", self.seed), ("Steps:", self.steps),
                             ("Size (width × height):", row(self.width_px, self.height_px))):
            preview.addRow(label, field)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults,
                                   accepted=self.accept, rejected=self.reject)
        self.restore_button = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        self.restore_button.clicked.connect(lambda: self.load(AppSettings()))

        layout = QVBoxLayout(self)
        for title, inner in (("Appearance", look), ("Folders", folders), ("Preview defaults", preview)):
            box = QGroupBox(title)
            box.setLayout(inner)
            layout.addWidget(box)
        layout.addWidget(buttons)
        self.load(settings)

    def load(self, s: AppSettings) -> None:
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.show_welcome.setChecked(s.show_welcome)
        self.output_folder.setText(s.output_folder)
        self.model_folders.clear()
        self.model_folders.addItems(list(s.model_folders))
        self.remove_model_folder.setEnabled(False)
        for name, box in self._preview_fields().items():
            (box.setText if isinstance(box, QLineEdit) else box.setValue)(getattr(s.preview, name))

    def edited(self) -> AppSettings:
        """The settings as shown; fields the dialog does not show are kept from the original."""
        folders = tuple(self.model_folders.item(i).text() for i in range(self.model_folders.count()))
        preview = {name: box.text() if isinstance(box, QLineEdit) else box.value()
                   for name, box in self._preview_fields().items()}
        return replace(self._original, theme=self.theme.currentData(),
                       show_welcome=self.show_welcome.isChecked(),
                       output_folder=self.output_folder.text().strip(), model_folders=folders,
                       preview=PreviewDefaults(**preview))

    def _preview_fields(self) -> dict[str, QLineEdit | QSpinBox]:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "seed": self.seed,
                "steps": self.steps, "width": self.width_px, "height": self.height_px}

    def add_model_folder_path(self, path: str | Path) -> None:
        text = str(Path(path).expanduser())
        if not self.model_folders.findItems(text, Qt.MatchFlag.MatchExactly):
            self.model_folders.addItem(text)

    def _browse_output(self) -> None:
        start = self.output_folder.text() or str(default_output_dir())
        folder = QFileDialog.getExistingDirectory(self, "Default output folder", start)
        if folder:
            self.output_folder.setText(folder)

    def _browse_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", self._original.last_folder)
        if folder:
            self.add_model_folder_path(folder)
