"""Help → About: the versions of LoRA Studio, its libraries and CUDA, and the GPU — what a bug report
needs, so "Copy" puts it on the clipboard as plain text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout,
                               QWidget)

from studio.hardware import Hardware, detect_in_child, versions
from ui.app_icon import app_icon
from ui.layout import column, fill, row
from ui.theme import scaled_font, set_role


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, *, info: dict[str, str] | None = None,
                 hardware: Hardware | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LoRA Studio")
        report = detect_in_child() if info is None or hardware is None else None  # torch only in a child
        self.info = info if info is not None else versions(cuda=report.cuda if report else None)
        self.hardware = hardware if hardware is not None else report.hardware

        size = self.fontMetrics().height() * 4  # grows with the font and the scale factor
        icon = QLabel(pixmap=app_icon().pixmap(size, size))
        title = QLabel(f"LoRA Studio {self.info.get('LoRA Studio', '')}",
                       font=scaled_font(self.font(), 1.6, bold=True))
        blurb = set_role(QLabel("Train and mix Stable Diffusion LoRAs on your own computer.", wordWrap=True),
                         "muted")

        form = QFormLayout()
        self.value_labels: dict[str, QLabel] = {}
        for key, value in [*self.info.items(), ("Device", self.hardware.summary())]:
            if key != "LoRA Studio":  # the title says it
                label = self.value_labels[key] = QLabel(value, wordWrap=key == "Device")
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                form.addRow(f"{key}:", label)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, rejected=self.reject)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy these versions for a bug report")
        self.copy_button.clicked.connect(self.copy)

        head = row((icon, 0, Qt.AlignmentFlag.AlignTop), (column(title, blurb), 1))
        fill(QVBoxLayout(self), head, form, buttons)

    def text(self) -> str:
        note = [f"Note: {self.hardware.error}"] if self.hardware.error else []
        lines = [f"{k}: {v}" for k, v in self.info.items()]
        return "\n".join([*lines, f"Device: {self.hardware.summary()}", *note])

    def copy(self) -> None:
        QApplication.clipboard().setText(self.text())
