"""The start-up dialog for an installation that does not match the tested library versions:
`studio.install_check`'s report, with the repair command to copy.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from studio.install_check import InstallReport


def install_problem_box(report: InstallReport, parent: QWidget | None = None) -> QMessageBox | None:
    error, warning = report.error(), report.warning()
    if not error and not warning:
        return None
    box = QMessageBox(parent, windowTitle="LoRA Studio: check the installation",
                      textFormat=Qt.TextFormat.PlainText,
                      textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
    # wide enough that the repair command (a long path) wraps as little as possible
    box.setStyleSheet("QLabel#qt_msgbox_label, QLabel#qt_msgbox_informativelabel { min-width: 36em; }")
    if error:
        box.setIcon(QMessageBox.Icon.Critical)
        box.setText("The installed libraries do not work together:\n" + "\n".join(f"• {s}" for s in report.broken)
                    + "\n\nTraining and mixing will not start until this is repaired.")
    else:
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText("These libraries are newer or older than the versions LoRA Studio was tested with:\n"
                    + "\n".join(f"• {item}" for item in report.out_of_range)
                    + "\n\nLoRA Studio may work, but if something fails, put the tested versions back.")
    box.setInformativeText(f"Close LoRA Studio, run this command, and start it again:\n\n{report.repair}")
    copy = box.addButton("Copy command", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.connect(lambda: QApplication.clipboard().setText(report.repair))
    box.addButton(QMessageBox.StandardButton.Close)
    return box
