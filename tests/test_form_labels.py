"""Labels in users' words and presets with what they are for (issue 18)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from studio.config import load_preset, preset_names, section_type
from studio.preset_info import description_from_text, read_preset, short_description
from ui.widgets.config_form import GROUPS, label_for

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(("section", "name", "label"), [
    ("network", "dora", "DoRA"), ("optimizer", "min_snr_gamma", "Min-SNR γ"),
    ("sampling", "every_n_steps", "Preview every N steps"),
    ("sampling", "validation_every_n_steps", "Validation every N steps"),
    ("sampling", "on_save", "Preview at every save"), ("sampling", "grid", "Preview grid image"),
    ("network", "lokr_factor", "LoKr factor"), ("optimizer", "lora_plus_ratio", "LoRA+ ratio"),
    ("output", "tensorboard", "TensorBoard log"),
])
def test_labels_in_users_words(section, name, label):
    assert label_for(section, name) == label


def test_no_two_fields_share_a_label_within_a_group():
    for section, _ in GROUPS:
        labels = [label_for(section, f.name) for f in fields(section_type(section))]
        assert len(labels) == len(set(labels)), section


def test_form_shows_the_labels(qtbot):
    from PySide6.QtWidgets import QLabel

    from ui.widgets.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    texts = {w.text() for w in form.findChildren(QLabel)}
    assert {"DoRA", "Min-SNR γ", "Preview every N steps", "Preview at every save"} <= texts
    assert not {"Dora", "Min snr gamma", "Every N steps", "On save", "Grid"} & texts


def test_preset_description_is_its_leading_comment():
    text = "\ufeff# An art style on SD 1.5: more images,\n# UNet only.\n[dataset]\n# not this\nresolution = 512\n"
    assert description_from_text(text) == "An art style on SD 1.5: more images, UNet only."
    assert description_from_text("[dataset]\n") == ""
    assert short_description("An art style on SD 1.5: more images") == "An art style on SD 1.5"
    assert short_description("SDXL at 1024 px (16 GB+ of VRAM)") == "SDXL at 1024 px"
    assert len(short_description("x" * 200)) == 60


def test_every_bundled_preset_has_a_description_and_still_loads():
    for name in preset_names():
        assert read_preset(name).description, name
        load_preset(name)  # the description is a comment: loading as a project mapping is untouched


def test_preset_box_lists_id_and_purpose(qtbot):
    from PySide6.QtCore import Qt

    from ui.widgets.preset_box import CUSTOM, PresetBox

    box = PresetBox()
    qtbot.addWidget(box)
    assert box.itemText(0) == CUSTOM and box.itemData(0) is None
    index = box.findData("sd15-style")
    assert box.itemText(index) == "sd15-style — An art style on SD 1.5"
    assert "UNet only" in box.itemData(index, Qt.ItemDataRole.ToolTipRole)
    widest = max(box.view().fontMetrics().horizontalAdvance(box.itemText(i)) for i in range(box.count()))
    assert box.view().minimumWidth() >= widest
