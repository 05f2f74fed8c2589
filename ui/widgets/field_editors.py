"""One editor widget per kind of config field, chosen from the field's type and `metadata`.

Each editor has `value()`, `set_value()` and a `changed` signal, so the form can treat them alike. A text
editor's `value()` is what the user typed, read by `field_info.parse_text` (the CLI's flags are read the
same way), and the form leaves the judging to `studio.config`: an impossible value gets the message a project
file or a flag would get. Ranges come from `metadata["min"/"max"]`, choices from `Literal[...]` types, the
tooltip is `field_info.field_help`: `studio.config` stays the one source of truth.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QMenu, QPlainTextEdit,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from studio.field_info import field_choices, field_help, parse_text, range_text
from studio.models.base_files import dialog_filter

INT32_MAX = 2**31 - 1


class FieldEditor(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def value(self) -> Any:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def set_value(self, value: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def focus_widget(self) -> QWidget:
        return self


class IntEditor(FieldEditor):
    """A spin box; a line edit for ranges beyond what QSpinBox holds (seeds up to 2³²−1)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self._lo, self._hi = int(meta.get("min", -INT32_MAX)), int(meta.get("max", INT32_MAX))
        if self._hi <= INT32_MAX and self._lo >= -INT32_MAX:
            self._spin: QSpinBox | None = QSpinBox()
            self._spin.setRange(self._lo, self._hi)
            self._spin.setGroupSeparatorShown(True)
            self._spin.valueChanged.connect(self.changed)
            self._layout.addWidget(self._spin)
            self._edit = None
        else:
            self._spin = None
            self._edit = QLineEdit()
            self._edit.textChanged.connect(self.changed)
            self._layout.addWidget(self._edit)

    def value(self) -> int | str:
        if self._spin is not None:
            return self._spin.value()
        return parse_text(self._edit.text(), int)

    def set_value(self, value: int) -> None:
        if self._spin is not None:
            self._spin.setValue(int(value))
        else:
            self._edit.setText(str(int(value)))

    def focus_widget(self) -> QWidget:
        return self._spin or self._edit


class FloatEditor(FieldEditor):
    """A line edit: learning rates like 1e-4 need scientific notation, which spin boxes handle badly."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self._edit = QLineEdit()
        self._edit.setPlaceholderText(range_text(meta))
        self._edit.textChanged.connect(self.changed)
        self._layout.addWidget(self._edit)

    def value(self) -> float | str:
        return parse_text(self._edit.text(), float)

    def set_value(self, value: float) -> None:
        self._edit.setText(f"{float(value):g}")

    def focus_widget(self) -> QWidget:
        return self._edit


class BoolEditor(FieldEditor):
    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self._box = QCheckBox()
        self._box.toggled.connect(self.changed)
        self._layout.addWidget(self._box)

    def value(self) -> bool:
        return self._box.isChecked()

    def set_value(self, value: bool) -> None:
        self._box.setChecked(bool(value))

    def focus_widget(self) -> QWidget:
        return self._box


class ChoiceEditor(FieldEditor):
    def __init__(self, choices: tuple[str, ...]) -> None:
        super().__init__()
        self._combo = QComboBox()
        self._combo.addItems(list(choices))
        self._combo.currentIndexChanged.connect(self.changed)
        self._layout.addWidget(self._combo)

    def value(self) -> str:
        return self._combo.currentText()

    def set_value(self, value: str) -> None:
        index = self._combo.findText(str(value))
        if index >= 0:
            self._combo.setCurrentIndex(index)

    def focus_widget(self) -> QWidget:
        return self._combo


class TextEditor(FieldEditor):
    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self._edit = QLineEdit()
        self._edit.textChanged.connect(self.changed)
        self._layout.addWidget(self._edit)

    def value(self) -> str:
        return self._edit.text()

    def set_value(self, value: str) -> None:
        self._edit.setText(str(value))

    def focus_widget(self) -> QWidget:
        return self._edit


class PathEditor(TextEditor):
    """Text plus a "…" menu: base models come as a single .safetensors / .ckpt file or as a diffusers folder."""

    def __init__(self, meta: dict[str, Any], *, files: bool = True, folders: bool = True) -> None:
        super().__init__(meta)
        button = QToolButton()
        button.setText("…")
        button.setToolTip("Choose on disk")
        menu = QMenu(button)  # popped up on click, not setMenu(): its arrow squeezed "…" out of the button
        if files:
            menu.addAction("Model file (.safetensors, .ckpt)…", self._choose_file)
        if folders:
            menu.addAction("Diffusers folder…", self._choose_folder)
        button.clicked.connect(self._show_menu)
        self._layout.addWidget(button)
        self._button, self._menu = button, menu

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
        super().__init__()
        column = QVBoxLayout()
        self._text = QPlainTextEdit()
        self._text.setTabChangesFocus(True)
        self._text.setFixedHeight(self._text.fontMetrics().lineSpacing() * 4 + 12)
        self._text.setPlaceholderText("one per line")
        self._text.textChanged.connect(self.changed)
        column.addWidget(self._text)
        if folders:
            add = QToolButton()
            add.setText("Add folder…")
            add.clicked.connect(self._add_folder)
            column.addWidget(add)
        self._layout.addLayout(column)

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of training images")
        if path:
            self.set_value((*self.value(), path))

    def value(self) -> tuple[str, ...]:
        return tuple(line.strip() for line in self._text.toPlainText().splitlines() if line.strip())

    def set_value(self, value: tuple[str, ...]) -> None:
        self._text.setPlainText("\n".join(value))

    def focus_widget(self) -> QWidget:
        return self._text


class PairEditor(FieldEditor):
    """A fixed pair of numbers (AdamW betas)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self._parts = [FloatEditor({"min": 0.0, "max": 1.0}), FloatEditor({"min": 0.0, "max": 1.0})]
        for part in self._parts:
            part.changed.connect(self.changed)
            self._layout.addWidget(part)

    def value(self) -> tuple[float | str, float | str]:
        return tuple(part.value() for part in self._parts)  # type: ignore[return-value]

    def set_value(self, value: tuple[float, float]) -> None:
        for part, v in zip(self._parts, value):
            part.set_value(v)

    def focus_widget(self) -> QWidget:
        return self._parts[0].focus_widget()


def make_editor(section: str, name: str, tp: Any, meta: dict[str, Any]) -> FieldEditor:
    """The editor for one field of `studio.config`."""
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
    return "".join(f"<p>{_escape(line)}</p>" for line in field_help(section, name).splitlines())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
