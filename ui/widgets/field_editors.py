"""One editor widget per kind of config field, chosen from the field's type and `metadata`.

A text editor's `value()` is what the user typed, read by `field_info.parse_text` as the CLI reads its
flags; judging it is left to `studio.config`, so an impossible value gets the message a project file or a
flag would get. Ranges, choices and tooltips come from `studio.config` too: it stays the one source of truth.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, get_args, get_origin

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QMenu,
                               QPlainTextEdit, QSpinBox, QToolButton, QWidget)

from studio.field_info import field_choices, field_help, parse_text, range_text
from studio.models.base_files import dialog_filter
from ui.layout import flat
from ui.widgets.build import button

INT32_MAX = 2**31 - 1


class FieldEditor(QWidget):
    """`main` is the widget that takes the focus; its `signal` is the editor's `changed`; `get` and `put`
    read and show the value unless a subclass overrides `value` and `set_value`."""

    changed = Signal()

    def __init__(self, main: QWidget, signal: Any, get: Callable[[], Any] | None = None,
                 put: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self._layout = flat(QHBoxLayout(self))
        self._main, self._get, self._put = main, get, put
        signal.connect(self.changed)
        self._layout.addWidget(main)

    def value(self) -> Any:
        return self._get()

    def set_value(self, value: Any) -> None:
        self._put(value)

    def focus_widget(self) -> QWidget:
        return self._main


class IntEditor(FieldEditor):
    """A spin box; a line edit for ranges beyond what QSpinBox holds (seeds up to 2³²−1)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        lo, hi = int(meta.get("min", -INT32_MAX)), int(meta.get("max", INT32_MAX))
        if hi <= INT32_MAX and lo >= -INT32_MAX:
            spin = QSpinBox(minimum=lo, maximum=hi, groupSeparatorShown=True)
            super().__init__(spin, spin.valueChanged, spin.value, lambda value: spin.setValue(int(value)))
        else:
            edit = QLineEdit()
            super().__init__(edit, edit.textChanged, lambda: parse_text(edit.text(), int),
                             lambda value: edit.setText(str(int(value))))


class BoolEditor(FieldEditor):
    def __init__(self, meta: dict[str, Any]) -> None:
        box = QCheckBox()
        super().__init__(box, box.toggled, box.isChecked, lambda value: box.setChecked(bool(value)))


class ChoiceEditor(FieldEditor):
    def __init__(self, choices: tuple[str, ...]) -> None:
        combo = QComboBox()
        combo.addItems(list(choices))
        super().__init__(combo, combo.currentIndexChanged, combo.currentText)

    def set_value(self, value: str) -> None:
        index = self._main.findText(str(value))
        if index >= 0:
            self._main.setCurrentIndex(index)


class TextEditor(FieldEditor):
    def __init__(self, meta: dict[str, Any]) -> None:
        self._edit = edit = QLineEdit()
        super().__init__(edit, edit.textChanged, edit.text, lambda value: edit.setText(str(value)))


class FloatEditor(FieldEditor):
    """A line edit: learning rates like 1e-4 need scientific notation, which spin boxes handle badly."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self._edit = edit = QLineEdit(placeholderText=range_text(meta))
        super().__init__(edit, edit.textChanged, lambda: parse_text(edit.text(), float),
                         lambda value: edit.setText(f"{float(value):g}"))


class PathEditor(TextEditor):
    """Text plus a "…" menu: base models come as a single .safetensors / .ckpt file or as a diffusers folder."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__(meta)
        self._button = button("…", "Choose on disk", self._show_menu, kind=QToolButton)
        # popped up on click, not setMenu(): its arrow squeezed "…" out of the button
        self._menu = QMenu(self._button)
        self._menu.addAction("Model file (.safetensors, .ckpt)…", self._choose_file)
        self._menu.addAction("Diffusers folder…", self._choose_folder)
        self._layout.addWidget(self._button)

    def _show_menu(self) -> None:
        self._menu.popup(self._button.mapToGlobal(self._button.rect().bottomLeft()))

    def _choose_file(self) -> None:
        # the same suffixes the pre-start check and the loader accept (studio.models.base_files)
        path, _ = QFileDialog.getOpenFileName(self, "Choose a base model", self._edit.text(), dialog_filter())
        if path:
            self._edit.setText(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder", self._edit.text())
        if path:
            self._edit.setText(path)


class ListEditor(FieldEditor):
    """A list of strings, one per line (prompts, folders); folders get an "Add folder…" button."""

    def __init__(self, meta: dict[str, Any], *, folders: bool = False) -> None:
        text = QPlainTextEdit(tabChangesFocus=True, placeholderText="one per line")
        text.setFixedHeight(text.fontMetrics().lineSpacing() * 4 + 12)
        super().__init__(text, text.textChanged,
                         lambda: tuple(line.strip() for line in text.toPlainText().splitlines() if line.strip()),
                         lambda value: text.setPlainText("\n".join(value)))
        if folders:
            self._layout.setDirection(QBoxLayout.Direction.TopToBottom)
            self._layout.addWidget(QToolButton(text="Add folder…", clicked=self._add_folder))

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of training images")
        if path:
            self.set_value((*self.value(), path))


class PairEditor(FieldEditor):
    """A fixed pair of numbers (AdamW betas)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        first, second = FloatEditor({"min": 0.0, "max": 1.0}), FloatEditor({"min": 0.0, "max": 1.0})
        super().__init__(first, first.changed, lambda: (first.value(), second.value()))
        second.changed.connect(self.changed)
        self._layout.addWidget(second)
        self._parts = (first, second)

    def set_value(self, value: tuple[float, float]) -> None:
        for part, v in zip(self._parts, value):
            part.set_value(v)

    def focus_widget(self) -> QWidget:
        return self._parts[0].focus_widget()


def make_editor(section: str, name: str, tp: Any, meta: dict[str, Any]) -> FieldEditor:
    if field_choices(tp):
        return ChoiceEditor(field_choices(tp))
    if tp is bool:
        return BoolEditor(meta)
    if tp is int:
        return IntEditor(meta)
    if tp is float:
        return FloatEditor(meta)
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return ListEditor(meta, folders=(section, name) == ("dataset", "folders"))
        return PairEditor(meta)
    if (section, name) == ("model", "path"):
        from ui.widgets.model_picker import ModelPicker  # it builds on PathEditor, so it imports this module

        return ModelPicker(meta)
    return TextEditor(meta)


def tooltip(section: str, name: str) -> str:
    """The field's `field_help` as rich text (one paragraph per line), so Qt wraps it."""
    return "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in field_help(section, name).splitlines())
