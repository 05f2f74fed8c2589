"""The Train form validates as the user types (issue 18 point 5), and it and `lora-studio train` refuse the same
bad configs in the same words, with the same help texts (issue 14 acceptance 3 and 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QTextDocument  # noqa: E402

from studio.cli import main  # noqa: E402
from studio.config import ProjectConfig, save_project  # noqa: E402
from studio.field_info import all_fields  # noqa: E402
from tests.conftest import make_images, tiny_config  # noqa: E402
from tests.test_cli_flags import help_entries  # noqa: E402

pytestmark = pytest.mark.gui


def plain(html: str) -> str:
    doc = QTextDocument()
    doc.setHtml(html)
    return " ".join(doc.toPlainText().split())


def banner_lines(panel) -> list[str]:
    """What the banner says, as the user reads it: the title, then each line of the hint."""
    if not panel.banner.isVisible():
        return []
    return [plain(panel.banner.title.text()), *panel.banner.hint.text().splitlines()]


@pytest.fixture
def panel(qtbot):
    from ui.panels.train_panel import TrainPanel

    widget = TrainPanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def edit(panel, section: str, key: str):
    return panel.form.editor(section, key).focus_widget()


def complete_config() -> ProjectConfig:
    """Nothing between fields is wrong (no disk is read until Start)."""
    return ProjectConfig().with_section("model", path="model.safetensors").with_section("dataset", folders=("d",))


def test_a_typed_value_is_judged_at_once_and_the_banner_goes_when_fixed(panel, qtbot):
    panel.set_project(complete_config(), None)
    assert panel.form.marked_fields() == [] and not panel.banner.isVisible()  # nothing told off on opening
    dropout = edit(panel, "network", "dropout")
    dropout.clear()
    qtbot.keyClicks(dropout, "abc")
    assert panel.form.marked_fields() == [("network", "dropout")]  # no Start pressed
    assert "border" in panel.form.editor("network", "dropout").styleSheet()
    assert banner_lines(panel) == ["Cannot start: [network] dropout is 'abc', expected a number",
                                   "Set it in the highlighted field: Dropout."]
    assert "[network] dropout is 'abc', expected a number" in plain(panel.form.editor("network", "dropout").toolTip())
    dropout.clear()
    qtbot.keyClicks(dropout, "0.1")
    assert panel.form.marked_fields() == [] and not panel.banner.isVisible()
    assert panel.form.editor("network", "dropout").styleSheet() == ""
    assert panel.form.config().network.dropout == 0.1


def test_rules_between_fields_are_listed_all_at_once(panel, qtbot):
    panel.set_project(complete_config(), None)
    panel.form.editor("network", "type").set_value("loha")
    edit(panel, "network", "dora").setChecked(True)
    edit(panel, "network", "rslora").setChecked(True)
    alpha = edit(panel, "network", "alpha")
    alpha.clear()
    qtbot.keyClicks(alpha, "-5")
    assert set(panel.form.marked_fields()) == {("network", "dora"), ("network", "rslora"), ("network", "alpha")}
    assert banner_lines(panel) == [
        "Cannot start: 3 problems (the fields are highlighted)",
        "• [network] alpha is -5.0, expected a value between 0.0 and 4096.0",
        "• [network] dora works with the lora and locon types, not loha",
        "• [network] rslora works with the lora and locon types, not loha"]
    panel.form.editor("network", "type").set_value("lora")
    alpha.clear()
    qtbot.keyClicks(alpha, "8")
    assert panel.form.marked_fields() == [] and not panel.banner.isVisible()


def test_a_missing_image_folder_is_highlighted_and_cleared_once_it_exists(panel, qtbot, tmp_path, tiny_sd1):
    project = tmp_path / "project.toml"
    cfg = tiny_config(tiny_sd1, tmp_path / "photos", tmp_path / "out")
    save_project(cfg, project)
    panel.set_project(cfg, project)
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.run_state == "idle" and panel.banner.isVisible(), timeout=10_000)
    assert panel.form.marked_fields() == [("dataset", "folders")]
    assert banner_lines(panel) == [f"Cannot start: {tmp_path / 'photos'}: folder not found",
                                   "check the path, or remove it from the list"]
    make_images(tmp_path / "photos", n=2, size=(64, 64))
    panel.form.editor("dataset", "folders").set_value((str(tmp_path / "photos"),))  # as retyping it does
    qtbot.waitUntil(lambda: not panel.banner.isVisible(), timeout=10_000)  # the disk check ran again
    assert panel.form.marked_fields() == []


def test_every_tooltip_is_the_flags_help(panel, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "5000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    flags = help_entries(capsys.readouterr().out)
    for info in all_fields():
        tooltip = plain(panel.form.editor(info.section, info.key).toolTip())
        assert tooltip == flags[info.flag], info.flag


# --------------------------------------------------------------------------------------------------
# Acceptance 3: the same bad configs, the same words from the form and from the command line


@dataclass(frozen=True)
class Bad:
    name: str
    section: str
    key: str
    flags: Callable[[Path], list[str]]  # for `lora-studio train`
    form: Callable[[object, Path], None]  # sets the form's fields


def _text(section: str, key: str, value: str):
    def apply(panel, _tmp: Path) -> None:
        widget = edit(panel, section, key)
        widget.clear()
        widget.insert(value)
    return apply


def _set(section: str, key: str, value: Callable[[Path], object]):
    return lambda panel, tmp: panel.form.editor(section, key).set_value(value(tmp))


def _both(*steps):
    def apply(panel, tmp: Path) -> None:
        for step in steps:
            step(panel, tmp)
    return apply


def _broken_ckpt(tmp: Path) -> Path:
    import torch

    torch.save({"w": torch.zeros(64)}, tmp / "whole.ckpt")
    raw = (tmp / "whole.ckpt").read_bytes()
    (tmp / "model.ckpt").write_bytes(raw[: len(raw) // 2])
    return tmp / "model.ckpt"


def _notes(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("my notes, not a model")
    return tmp / "notes.txt"


_TINY_MODEL: list[Path] = []  # the session's tiny model, set by the test (the cases are built at import)


def _broken_folder(tmp: Path) -> Path:
    """A diffusers folder whose UNet config was lost (a copy cut short)."""
    import shutil

    folder = tmp / "broken-model"
    if not folder.exists():
        shutil.copytree(_TINY_MODEL[0], folder)
        (folder / "unet" / "config.json").unlink()
    return folder


def _a_file(tmp: Path) -> Path:
    (tmp / "taken").write_text("a file where the export folder goes")
    return tmp / "taken"


BAD = [
    Bad("type error", "network", "dropout", lambda t: ["--network-dropout", "abc"], _text("network", "dropout", "abc")),
    Bad("out of range", "network", "alpha", lambda t: ["--network-alpha=-5"], _text("network", "alpha", "-5")),
    Bad("NaN", "optimizer", "unet_lr", lambda t: ["--optimizer-unet-lr", "nan"], _text("optimizer", "unet_lr", "nan")),
    Bad("cross-field", "network", "dora", lambda t: ["--network-type", "lokr", "--network-dora"],
        _both(_set("network", "type", lambda t: "lokr"), _set("network", "dora", lambda t: True))),
    Bad("warm-up", "schedule", "warmup_steps", lambda t: ["--schedule-warmup-steps", "50"],
        _set("schedule", "warmup_steps", lambda t: 50)),
    Bad("missing image folder", "dataset", "folders", lambda t: ["--data", str(t / "gone")],
        _set("dataset", "folders", lambda t: (str(t / "gone"),))),
    Bad("wrong model file", "model", "path", lambda t: ["--model", str(_notes(t))],
        _set("model", "path", lambda t: str(_notes(t)))),
    Bad("broken .ckpt", "model", "path", lambda t: ["--model", str(_broken_ckpt(t))],
        _set("model", "path", lambda t: str(_broken_ckpt(t)))),
    Bad("broken diffusers folder", "model", "path", lambda t: ["--model", str(_broken_folder(t))],
        _set("model", "path", lambda t: str(_broken_folder(t)))),
    Bad("bad output path", "output", "directory", lambda t: ["--out", str(_a_file(t))],
        _set("output", "directory", lambda t: str(_a_file(t)))),
    Bad("preview size", "sampling", "width", lambda t: ["--sampling-width", "100"],
        _set("sampling", "width", lambda t: 100)),
    Bad("file name", "output", "name", lambda t: ["--output-name", "a/b"], _text("output", "name", "a/b")),
]


def _cli_errors(capsys, argv: list[str]) -> list[str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    return [re.sub(r"^error: (command line: )?", "", line) for line in err.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("bad", BAD, ids=[b.name for b in BAD])
def test_the_form_and_the_cli_refuse_with_the_same_words(bad, panel, qtbot, capsys, monkeypatch, tmp_path, tiny_sd1):
    from studio.train import engine

    monkeypatch.setattr(engine, "run_training", lambda *a, **k: pytest.fail("the CLI trained a bad config"))
    _TINY_MODEL[:] = [tiny_sd1]
    data = make_images(tmp_path / "data", n=2, size=(64, 64))
    cfg = tiny_config(tiny_sd1, data, tmp_path / "out", schedule={"max_steps": 20})
    project = tmp_path / "project.toml"
    save_project(cfg, project)
    # the command line: the good project's values as flags, then the bad one
    base = ["train", "--model", str(tiny_sd1), "--data", str(data), "--out", str(tmp_path / "out"), "--steps", "20",
            "--resolution", "64", "--quiet"]
    extra = bad.flags(tmp_path)
    if "--data" in extra or "--model" in extra:  # these replace the good value (`--data` appends)
        flag = "--data" if "--data" in extra else "--model"
        i = base.index(flag)
        del base[i:i + 2]
    cli = _cli_errors(capsys, [*base, *extra])
    # the form: the same project, the same value typed in, then Start
    panel.set_project(cfg, project)
    bad.form(panel, tmp_path)
    qtbot.mouseClick(panel.controls.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.run_state == "idle" and panel.banner.isVisible(), timeout=10_000)
    form = [p.message for p in panel.form.problems() if p.severity == "error"]
    assert form == cli, bad.name  # every problem, in the same words
    assert (bad.section, bad.key) in panel.form.marked_fields()
    (message,) = [p.message for p in panel.form.problems() if (p.section, p.key) == (bad.section, bad.key)]
    assert f"Cannot start: {message}" in banner_lines(panel)
    assert "pytorch" not in message.lower().replace("pytorch file", "").replace("pytorch checkpoint", "")
    if bad.section == "model":  # the field's own line under the path says it too
        picker = panel.model_picker
        qtbot.waitUntil(lambda: picker.info_is_error(), timeout=10_000)
        assert message in picker.info_text()


def test_a_missing_base_model_names_the_field_in_the_forms_words_and_the_flag_on_the_command_line(panel, capsys):
    panel.set_project(complete_config(), None)
    panel.form.editor("model", "path").set_value("")  # as clearing the field does
    assert banner_lines(panel) == ["Cannot start: choose a base model: a diffusers folder or a .safetensors / "
                                   ".ckpt checkpoint", "Set it in the highlighted field: Base model."]
    assert main(["train", "--steps", "4", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "hint: set it with --model-path, or [model] path in the project file" in err
    assert "hint: set it with --dataset-folders, or [dataset] folders in the project file" in err
