"""The project's settings as a form, generated from the `studio.config` dataclasses and their metadata.

Nothing here lists fields by hand: a field added to `studio.config` appears in the form with its
tooltip, range and editor. Fields marked `advanced` go into a collapsed "Advanced" part of their group.
`config()` validates every field through `studio.config.build_section` — the same code that reads
project files — and names the offending field, so the form can highlight it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFormLayout, QGroupBox, QLabel, QToolButton, QVBoxLayout, QWidget)

from studio.config import ProjectConfig, build_section, section_type
from studio.errors import ConfigError
from ui.wheel_guard import guard_wheel_in
from ui.widgets.field_editors import FieldEditor, make_editor, tooltip

#: (section, title) in the order the groups appear
GROUPS: tuple[tuple[str, str], ...] = (
    ("model", "Model"), ("dataset", "Dataset"), ("network", "Network"), ("optimizer", "Optimizer"),
    ("schedule", "Schedule"), ("sampling", "Sampling"), ("output", "Output"),
)

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
    """A field of the form holds an impossible value."""

    def __init__(self, section: str, name: str, message: str) -> None:
        super().__init__(message)
        self.section, self.name = section, name


@dataclass
class _Field:
    section: str
    name: str
    editor: FieldEditor
    label: QLabel
    advanced_box: QWidget | None


def label_for(section: str, name: str) -> str:
    return LABELS.get(f"{section}.{name}", name.replace("_", " ").capitalize())


class ConfigForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: dict[tuple[str, str], _Field] = {}
        self._base = ProjectConfig()
        self._loading = False
        self._marked: list[_Field] = []
        layout = QVBoxLayout(self)
        for section, title in GROUPS:
            layout.addWidget(self._build_group(section, title))
        layout.addStretch(1)
        guard_wheel_in(self)  # the form scrolls under the wheel; its numbers change only once clicked into

    def _build_group(self, section: str, title: str) -> QGroupBox:
        group = QGroupBox(title)
        group.setObjectName(f"group-{section}")
        outer = QVBoxLayout(group)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(form)
        advanced_form: QFormLayout | None = None
        advanced_box: QWidget | None = None
        cls = section_type(section)
        hints = get_type_hints(cls)
        for f in fields(cls):
            meta = dict(f.metadata)
            editor = make_editor(section, f.name, hints[f.name], meta)
            editor.setObjectName(f"{section}.{f.name}")
            label = QLabel(label_for(section, f.name))
            tip = tooltip(section, f.name, meta)
            label.setToolTip(tip)
            editor.setToolTip(tip)
            editor.changed.connect(self._on_changed)
            target = form
            if meta.get("advanced"):
                if advanced_form is None:
                    advanced_box, advanced_form = self._advanced_part(outer)
                target = advanced_form
            target.addRow(label, editor)
            self._fields[(section, f.name)] = _Field(section, f.name, editor, label,
                                                     advanced_box if meta.get("advanced") else None)
        return group

    def _advanced_part(self, outer: QVBoxLayout) -> tuple[QWidget, QFormLayout]:
        toggle = QToolButton()
        toggle.setText("Advanced")
        toggle.setCheckable(True)
        toggle.setAutoRaise(True)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.ArrowType.RightArrow)
        box = QWidget()
        box.setVisible(False)
        box.setProperty("toggle", toggle)
        form = QFormLayout(box)
        form.setContentsMargins(12, 0, 0, 0)

        def flip(on: bool) -> None:
            box.setVisible(on)
            toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

        toggle.toggled.connect(flip)
        outer.addWidget(toggle)
        outer.addWidget(box)
        return box, form

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
        self.clear_marks()

    def config(self) -> ProjectConfig:
        """The form's values as a config; FormError names the first field that is wrong."""
        cfg = self._base
        for section, _ in GROUPS:
            current = getattr(cfg, section)
            for (sec, name), item in self._fields.items():
                if sec != section:
                    continue
                try:
                    value = item.editor.value()
                    if isinstance(value, tuple):
                        value = list(value)
                    current = build_section(section, {name: value}, current, "form")
                except ValueError as exc:
                    raise FormError(section, name, f"{label_for(section, name)}: {exc}") from None
                except ConfigError as exc:
                    message = str(exc).split(f"] {name} ", 1)[-1]
                    raise FormError(section, name, f"{label_for(section, name)} {message}") from None
            cfg = cfg.with_section(section, **{f.name: getattr(current, f.name) for f in fields(current)})
        return cfg

    def mark(self, section: str, name: str, message: str) -> None:
        """Highlight a field (red border, message as its tooltip), open its Advanced part, scroll to it."""
        item = self._fields.get((section, name))
        if item is None:
            return
        item.editor.setStyleSheet(INVALID_STYLE)
        item.editor.setToolTip(f"<p><b>{_escape(message)}</b></p>" + tooltip(section, name, _meta(section, name)))
        item.label.setStyleSheet("color: #d9534f; font-weight: bold;")
        if item.advanced_box is not None and not item.advanced_box.isVisible():
            item.advanced_box.property("toggle").setChecked(True)
        self._marked.append(item)
        item.editor.focus_widget().setFocus()
        self._ensure_visible(item.editor)

    def marked_fields(self) -> list[tuple[str, str]]:
        return [(m.section, m.name) for m in self._marked]

    def clear_marks(self) -> None:
        for item in self._marked:
            item.editor.setStyleSheet("")
            item.editor.setToolTip(tooltip(item.section, item.name, _meta(item.section, item.name)))
            item.label.setStyleSheet("")
        self._marked.clear()

    def _ensure_visible(self, widget: QWidget) -> None:
        from PySide6.QtWidgets import QScrollArea

        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            parent.ensureWidgetVisible(widget, 20, 40)

    def _on_changed(self) -> None:
        if not self._loading:
            self.changed.emit()


def _meta(section: str, name: str) -> dict[str, Any]:
    for f in fields(section_type(section)):
        if f.name == name:
            return dict(f.metadata)
    return {}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
