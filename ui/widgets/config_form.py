"""The project's settings as a form, generated from the `studio.config` dataclasses and their metadata.

No field is listed by hand: a field added to `studio.config` appears with its tooltip (the text of its
`lora-studio train` flag), range and editor; `advanced` ones go into a collapsed part of their group.
Each edit is judged by `config.build_section` (the reader of project files and flags: the same messages)
and the whole config by `studio.validate.validate`; every field with an error is highlighted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from studio.config import ProjectConfig, build_section, section_type
from studio.errors import ConfigError, Problem
from studio.field_info import SECTION_TITLES
from studio.validate import validate
from ui.layout import fill
from ui.wheel_guard import guard_wheel_in
from ui.widgets.build import disclosure
from ui.widgets.field_editors import FieldEditor, make_editor, tooltip

#: (section, title) in the order the groups appear
GROUPS: tuple[tuple[str, str], ...] = tuple(SECTION_TITLES.items())

#: The form's labels in users' words (the one place they are set). A field missing here gets its name,
#: capitalised; tests/test_form_labels.py checks the acronyms and sampling labels below stay as written.
LABELS: dict[str, str] = {
    "model.path": "Base model", "model.clip_skip": "CLIP skip", "model.ema": "EMA weights",
    "dataset.folders": "Image folders", "dataset.bucket_no_upscale": "Never upscale into buckets",
    "network.train_text_encoder": "Train text encoder", "network.type": "Adapter type", "network.dora": "DoRA",
    "network.rslora": "rsLoRA scaling", "network.init": "Initialisation", "network.lokr_factor": "LoKr factor",
    "optimizer.name": "Optimizer", "optimizer.unet_lr": "UNet learning rate",
    "optimizer.text_encoder_lr": "Text encoder LR", "optimizer.max_grad_norm": "Max gradient norm",
    "optimizer.eps": "Epsilon", "optimizer.huber_c": "Huber threshold (c)", "optimizer.min_snr_gamma": "Min-SNR γ",
    "optimizer.lora_plus_ratio": "LoRA+ ratio", "optimizer.ema_decay": "EMA decay",
    "schedule.lr_scheduler": "LR schedule", "schedule.max_steps": "Steps", "schedule.lr_cycles": "LR cycles",
    "schedule.lr_power": "LR power", "schedule.zero_terminal_snr": "Zero terminal SNR",
    "schedule.compile_unet": "Compile the UNet", "sampling.every_n_steps": "Preview every N steps",
    "sampling.prompts": "Preview prompts", "sampling.seed": "Preview seed", "sampling.steps": "Denoising steps",
    "sampling.on_save": "Preview at every save", "sampling.grid": "Preview grid image",
    "sampling.validation_percent": "Validation hold-out (%)", "sampling.validation_images": "Validation images",
    "sampling.validation_every_n_steps": "Validation every N steps",
    "sampling.validation_timesteps": "Validation timesteps", "sampling.validation_seed": "Validation seed",
    "output.save_every_n_steps": "Save every N steps", "output.dtype": "Saved precision",
    "output.name": "LoRA name", "output.directory": "Export folder", "output.tensorboard": "TensorBoard log",
}

INVALID_STYLE = "QLineEdit, QSpinBox, QComboBox, QPlainTextEdit { border: 2px solid #d9534f; }"


class FormError(ConfigError):
    """Fields of the form hold impossible values: `problems` lists each (section, key, message)."""


@dataclass
class _Field:
    section: str
    name: str
    editor: FieldEditor
    label: QLabel
    advanced: QToolButton | None  # the toggle of the collapsed part the field is in


def label_for(section: str, name: str) -> str:
    return LABELS.get(f"{section}.{name}", name.replace("_", " ").capitalize())


def _plain(value: Any) -> Any:
    """An editor's value as a project file holds it (lists, not tuples)."""
    return list(value) if isinstance(value, tuple) else value


class ConfigForm(QWidget):
    changed = Signal()
    problems_changed = Signal()  # the fields' or the config's problems changed: read them with problems()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: dict[tuple[str, str], _Field] = {}
        self._base = ProjectConfig()
        self._loading = False
        self._marked: list[_Field] = []
        self._field_problems: dict[tuple[str, str], Problem] = {}  # type and range, per field
        self._rule_problems: list[Problem] = []  # studio.validate.validate on the whole config
        self._file_problems: list[Problem] = []  # studio.validate.check_files, from the panel's pool thread
        self._shown = False  # problems are shown once the user edits a field or presses Start
        fill(QVBoxLayout(self), *(self._build_group(section, title) for section, title in GROUPS), None)
        guard_wheel_in(self)  # the form scrolls under the wheel; its numbers change only once clicked into
        self.set_config(self._base)  # every editor holds a value from the start

    def _build_group(self, section: str, title: str) -> QGroupBox:
        group = QGroupBox(title, objectName=f"group-{section}")
        form = QFormLayout(fieldGrowthPolicy=QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer = fill(QVBoxLayout(group), form)
        advanced: tuple[QToolButton, QFormLayout] | None = None  # made with the group's first advanced field
        cls = section_type(section)
        hints = get_type_hints(cls)
        for f in fields(cls):
            meta = dict(f.metadata)
            editor = make_editor(section, f.name, hints[f.name], meta)
            editor.setObjectName(f"{section}.{f.name}")
            tip = tooltip(section, f.name)
            label = QLabel(label_for(section, f.name), toolTip=tip)
            editor.setToolTip(tip)
            editor.changed.connect(lambda s=section, n=f.name: self._on_changed(s, n))
            if meta.get("advanced"):
                advanced = advanced or self._advanced_part(outer)
            toggle, target = advanced if meta.get("advanced") else (None, form)
            target.addRow(label, editor)
            self._fields[(section, f.name)] = _Field(section, f.name, editor, label, toggle)
        return group

    def _advanced_part(self, outer: QVBoxLayout) -> tuple[QToolButton, QFormLayout]:
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(12, 0, 0, 0)
        toggle = disclosure("Advanced", box)
        fill(outer, toggle, box)
        return toggle, form

    # ---------------------------------------------------------------------------------------------
    def editor(self, section: str, name: str) -> FieldEditor:
        return self._fields[(section, name)].editor

    def set_config(self, cfg: ProjectConfig) -> None:
        self._loading = True
        try:
            self._base = cfg
            for (section, name), item in self._fields.items():
                item.editor.set_value(getattr(getattr(cfg, section), name))
        finally:
            self._loading = False
        self._shown = False  # a project just opened is not told off before the user does anything
        self._file_problems = []
        self._recheck_all()

    def config(self) -> ProjectConfig:
        """The form's values as a config; FormError lists every field whose value is impossible."""
        self._recheck_all()
        problems = list(self._field_problems.values())
        if problems:
            raise FormError.from_problems(problems)
        return self._collect()

    def problems(self) -> list[Problem]:
        """Every problem found now: the fields' own, then those between fields, then the files'; errors first."""
        found = [*self._field_problems.values(), *self._rule_problems, *self._file_problems]
        return sorted(found, key=lambda p: p.severity != "error")

    def set_file_problems(self, problems: list[Problem]) -> None:
        """The disk check's result (`studio.validate.check_files`), shown with the others until the field changes."""
        self._file_problems = list(problems)
        self._shown = True
        self._show_problems()

    def reveal(self) -> None:
        """Show the problems even though nothing was edited (the user pressed Start); focus the first."""
        self._shown = True
        self._show_problems()
        if self._marked:
            first = self._marked[0]
            if first.advanced is not None:
                first.advanced.setChecked(True)
            first.editor.focus_widget().setFocus()
            self._ensure_visible(first.editor)

    def shown(self) -> bool:
        return self._shown

    def marked_fields(self) -> list[tuple[str, str]]:
        return [(m.section, m.name) for m in self._marked]

    # ---------------------------------------------------------------------------------------------
    def _check_field(self, section: str, name: str) -> None:
        item = self._fields[(section, name)]
        try:
            build_section(section, {name: _plain(item.editor.value())}, getattr(self._base, section), "form")
        except ConfigError as exc:
            self._field_problems[(section, name)] = (exc.problems[0] if exc.problems
                                                     else Problem(section, name, str(exc), exc.hint))
        else:
            self._field_problems.pop((section, name), None)

    def _collect(self) -> ProjectConfig:
        """The config from every field that holds a valid value (the others keep the loaded value)."""
        values: dict[str, dict[str, Any]] = {}
        for (section, name), item in self._fields.items():
            if (section, name) not in self._field_problems:
                values.setdefault(section, {})[name] = _plain(item.editor.value())
        cfg = self._base
        for section, changes in values.items():
            while True:
                try:
                    current = build_section(section, changes, getattr(cfg, section), "form")
                    break
                except ConfigError as exc:  # a field not judged yet: it is now, and keeps the loaded value
                    self._field_problems[(section, exc.key)] = exc.problems[0]
                    changes.pop(exc.key)
            cfg = cfg.with_section(section, **{f.name: getattr(current, f.name) for f in fields(current)})
        return cfg

    def _recheck_all(self) -> None:
        for section, name in self._fields:
            self._check_field(section, name)
        self._recheck_rules()

    def _recheck_rules(self) -> None:
        self._rule_problems = validate(self._collect())
        self._show_problems()

    def _show_problems(self) -> None:
        self._clear_marks()
        if self._shown:
            for problem in self.problems():
                if problem.severity == "error":
                    self._mark(problem)
        self.problems_changed.emit()

    def _mark(self, problem: Problem) -> None:
        """Highlight a field (red border and label, the message at the top of its tooltip)."""
        item = self._fields.get((problem.section, problem.key))
        if item is None or item in self._marked:
            return
        item.editor.setStyleSheet(INVALID_STYLE)
        message = html.escape(problem.message, quote=False)
        item.editor.setToolTip(f"<p><b>{message}</b></p>" + tooltip(item.section, item.name))
        item.label.setStyleSheet("color: #d9534f; font-weight: bold;")
        self._marked.append(item)

    def _clear_marks(self) -> None:
        for item in self._marked:
            item.editor.setStyleSheet("")
            item.editor.setToolTip(tooltip(item.section, item.name))
            item.label.setStyleSheet("")
        self._marked.clear()

    def _ensure_visible(self, widget: QWidget) -> None:
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            parent.ensureWidgetVisible(widget, 20, 40)

    def _on_changed(self, section: str, name: str) -> None:
        if self._loading:
            return
        self._shown = True
        self._check_field(section, name)
        # a file problem of this field is stale now; the panel runs the disk check again
        self._file_problems = [p for p in self._file_problems if (p.section, p.key) != (section, name)]
        self._recheck_rules()
        self.changed.emit()
