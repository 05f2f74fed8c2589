"""One dialog for every batch caption operation, with a live count of the captions it would change;
the panel turns its `TagOp` and scope into one undoable edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QCompleter, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QLineEdit, QSpinBox, QVBoxLayout, QWidget)

from studio.dataset.tags import TagOp
from ui.layout import fill

OPERATIONS = [("trigger_first", "Put a trigger word first"), ("add", "Add a tag"), ("remove", "Remove a tag"),
              ("rename", "Rename a tag"), ("replace", "Find and replace"),
              ("dedupe", "Remove duplicate tags"), ("sort", "Sort tags")]
SCOPES = [("selection", "Selected images"), ("shown", "Images shown by the filter"), ("all", "All images")]


class BatchEditDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, *, operation: str = "trigger_first", tag: str = "",
                 scope: str = "selection", tags: list[str] | None = None, scope_sizes: dict[str, int] | None = None,
                 count_changes: Callable[[TagOp, str], int] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit captions in batch")
        # wide enough for its title on every desktop (a narrow dialog showed "Edit captions in…")
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance(self.windowTitle()) + 12 * self.fontMetrics().height())
        self._count = count_changes
        form = self._form = QFormLayout()
        self.operation = QComboBox()
        for key, label in OPERATIONS:
            self.operation.addItem(label, key)
        self.operation.setCurrentIndex(max(0, self.operation.findData(operation)))
        form.addRow("Operation", self.operation)
        self.tag = QLineEdit(tag)
        completer = QCompleter(QStringListModel(tags or [], self), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.tag.setCompleter(completer)
        form.addRow("Tag", self.tag)
        self.value = QLineEdit()
        form.addRow("New name", self.value)
        self.regex = QCheckBox("Regular expression (\\1 in the replacement refers to a group)")
        self.case = QCheckBox("Match case", checked=True)
        form.addRow("", self.regex)
        form.addRow("", self.case)
        self.keep_first = QSpinBox(minimum=0, maximum=20,
                                   toolTip="Leave this many leading tags (a trigger word) where they are")
        form.addRow("Keep first", self.keep_first)
        self.by_frequency = QCheckBox("Most frequent tags first (otherwise alphabetical)")
        form.addRow("", self.by_frequency)
        self.scope = QComboBox()
        sizes = scope_sizes or {}
        for key, label in SCOPES:
            self.scope.addItem(f"{label} ({sizes[key]})" if key in sizes else label, key)
        self.scope.setCurrentIndex(max(0, self.scope.findData(scope)))
        form.addRow("Apply to", self.scope)
        self.preview = QLabel(wordWrap=True)
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        self.buttons = QDialogButtonBox(ok_cancel, accepted=self.accept, rejected=self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply")
        fill(QVBoxLayout(self), form, self.preview, self.buttons)

        self._timer = QTimer(self, singleShot=True, interval=150, timeout=self._update_preview)
        for signal in (self.tag.textChanged, self.value.textChanged, self.regex.toggled, self.case.toggled,
                       self.by_frequency.toggled, self.keep_first.valueChanged,
                       self.scope.currentIndexChanged):
            signal.connect(self._timer.start)
        self.operation.currentIndexChanged.connect(self._operation_changed)
        self._operation_changed()

    def _operation_changed(self) -> None:
        op = self.operation.currentData()
        tag_label = {"trigger_first": "Trigger word", "replace": "Find"}.get(op, "Tag")
        self._form.labelForField(self.tag).setText(tag_label)
        self._form.labelForField(self.value).setText("Replace with" if op == "replace" else "New name")
        for field, shown in ((self.tag, op in ("trigger_first", "add", "remove", "rename", "replace")),
                             (self.value, op in ("rename", "replace")), (self.regex, op == "replace"),
                             (self.case, op == "replace"), (self.keep_first, op == "sort"),
                             (self.by_frequency, op == "sort")):
            self._form.setRowVisible(field, shown)
        self._update_preview()

    def operation_result(self) -> TagOp:
        """The chosen operation; raises ValueError or re.error when the fields do not make one."""
        return TagOp(self.operation.currentData(), tag=self.tag.text(), value=self.value.text(),
                     regex=self.regex.isChecked(), case_sensitive=self.case.isChecked(),
                     keep_first=self.keep_first.value())

    @property
    def chosen_scope(self) -> str:
        return self.scope.currentData()

    @property
    def sort_by_frequency(self) -> bool:
        return self.by_frequency.isChecked()

    def _update_preview(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            op = self.operation_result()
        except (re.error, ValueError) as exc:
            self.preview.setText(f"<span style='color:#c0392b'>Not a valid regular expression: {exc}</span>"
                                 if isinstance(exc, re.error) else str(exc)[:1].upper() + str(exc)[1:] + ".")
            ok.setEnabled(False)
            return
        ok.setEnabled(True)
        if self._count is not None:
            n = self._count(op, self.chosen_scope)
            self.preview.setText(f"Changes {n} caption{'s' if n != 1 else ''}. Undo takes it back in one step.")
