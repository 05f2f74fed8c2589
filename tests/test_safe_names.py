"""One rule for file names made from names users give (studio/safe_names.py), and every place that derives a
path from one: a name never leaves its folder, never makes a hidden or device file, fits every system."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from studio.config import ProjectConfig, apply_mapping, load_project
from studio.errors import ConfigError
from studio.safe_names import (MAX_NAME_BYTES, MAX_NAME_CHARS, file_name_problem, safe_child, safe_file_name,
                               unique_file_name)


@pytest.mark.parametrize("name, safe", [
    ("lora", "lora"),
    ("My LoRA (v2)", "My LoRA (v2)"),
    ("../../escaped", "escaped"),
    ("..\\..\\Windows\\evil", "Windows_evil"),
    ("/etc/passwd", "etc_passwd"),
    ("a/b", "a_b"),
    ("", "untitled"),
    ("   ", "untitled"),
    ("..", "untitled"),
    (".hidden", "hidden"),
    ("lora.", "lora"),
    ("lora ", "lora"),
    ("CON", "CON_"),
    ("nul.txt", "nul_.txt"),
    ("Com1.safetensors", "Com1_.safetensors"),
    ("LPT\u00b9", "LPT\u00b9_"),
    ("console", "console"),
    ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
    ("tab\there\nnewline", "tab_here_newline"),
    ("nul\x00byte", "nul_byte"),
    ("e\u0301t\u00e9", "\u00e9t\u00e9"),  # one form of é, as macOS would store it
])
def test_names_are_made_safe(name, safe):
    assert safe_file_name(name) == safe


def test_long_names_are_cut_keeping_the_extension_and_whole_characters():
    assert safe_file_name("x" * 300) == "x" * MAX_NAME_CHARS
    cut = safe_file_name("y" * 300 + ".safetensors")
    assert cut.endswith("y.safetensors") and len(cut) == MAX_NAME_CHARS
    emoji = safe_file_name("\U0001f600" * 100)
    assert emoji == "\U0001f600" * (MAX_NAME_BYTES // 4) and len(emoji.encode("utf-8")) <= MAX_NAME_BYTES


def _hostile_names() -> list[str]:
    rng = random.Random(17)
    alphabet = 'aZ9 ._-/\\:*?"<>|\x00\x01\n\t\u00e9e\u0301\U0001f600CONnul\ufeff'
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    return names + ["x" * 400, "é" * 200, "CON .txt", " . ", "COM9", "aux.tar.gz", "-", "_"]


def test_a_safe_name_is_safe_stays_the_same_and_is_exactly_what_the_check_accepts():
    for name in _hostile_names():
        safe = safe_file_name(name)
        assert file_name_problem(safe) is None, (name, safe)
        assert safe_file_name(safe) == safe, name
        assert (safe == name) == (file_name_problem(name) is None), name
        assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".")
        assert len(safe) <= MAX_NAME_CHARS and len(safe.encode("utf-8")) <= MAX_NAME_BYTES


def test_a_safe_child_never_leaves_its_folder(tmp_path):
    for name in _hostile_names():
        child = safe_child(tmp_path, name)
        assert child.parent == tmp_path and child.name not in ("", ".", "..")


def test_names_that_differ_only_by_case_are_one_file(tmp_path):
    assert unique_file_name("A.PNG", ["a.png"]) == "A-2.PNG"
    assert unique_file_name("cat.png", ["CAT.png", "cat-2.PNG"]) == "cat-3.png"
    assert unique_file_name("\u00e9t\u00e9.png", ["E\u0301TE\u0301.png"]) == "\u00e9t\u00e9-2.png"
    (tmp_path / "dog.png").write_bytes(b"x")
    assert unique_file_name("dog.png", [], tmp_path) == "dog-2.png"
    assert unique_file_name("bird.png", [], tmp_path) == "bird.png"


# --------------------------------------------------------------------------------------------------
# output.name: refused up front, naming the field and the fix


@pytest.mark.parametrize("toml_value, problem, suggestion", [
    ('"../../escaped"', "folder separator", "'escaped'"),
    ('""', "it is empty", "'lora'"),
    ('"a\\u0000b"', "(NUL)", "'a_b'"),
    ('"' + "n" * 300 + '"', "longer than a file name can safely be", "'" + "n" * MAX_NAME_CHARS + "'"),
    ('".lora"', "hidden file", "'lora'"),
    ('"CON"', "device name on Windows", "'CON_'"),
    ('"my lora?"', "(?)", "'my lora_'"),
])
def test_a_project_with_a_bad_output_name_is_refused_with_the_fix(tmp_path, toml_value, problem, suggestion):
    project = tmp_path / "project.toml"
    project.write_text(f"[output]\nname = {toml_value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_project(project)
    message = str(info.value)
    assert message.startswith(f"{project}: [output] name is ") and "cannot be a file name" in message
    assert problem in message
    assert info.value.hint == f"use a plain name, for example {suggestion}"


def test_the_command_line_name_is_checked_the_same_way():
    with pytest.raises(ConfigError, match=r"command line: \[output\] name is '\.\./x', which cannot be a file name"):
        apply_mapping(ProjectConfig(), {"output": {"name": "../x"}}, "command line")


def test_a_bad_name_set_in_code_fails_before_any_model_loads(tiny_sd1, image_folder, tmp_path, monkeypatch):
    from studio.events import Failed
    from studio.train import engine
    from tests.conftest import tiny_config

    def no_model(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the model was loaded before the name was checked")

    monkeypatch.setattr(engine, "load_components", no_model)
    out = tmp_path / "deep" / "out"
    for name in ("../../escaped", "", "a\x00b", "n" * 300):
        cfg = tiny_config(tiny_sd1, image_folder, out).with_section("output", name=name)
        events = list(engine.run_training(cfg))
        assert len(events) == 1 and isinstance(events[0], Failed), events
        assert "[output] name" in events[0].error and "cannot be a file name" in events[0].error
    assert list(tmp_path.rglob("*")) == []  # nothing written, inside the output folder or outside it


def test_validate_marks_the_name_field():
    from studio.validate import validate

    cfg = ProjectConfig().with_section("output", name="nul")
    found = {(p.section, p.key): p for p in validate(cfg)}
    assert found[("output", "name")].message == ("[output] name is 'nul', which cannot be a file name: `nul` is a "
                                                 "device name on Windows, not a file")
    assert found[("output", "name")].hint == "use a plain name, for example 'nul_'"


# --------------------------------------------------------------------------------------------------
# the other places a path comes from a name


def test_run_folders_stay_in_runs_and_are_valid_everywhere(tmp_path):
    from studio.run_folder import new_run_dir

    runs = tmp_path / "runs"
    for name in ("..", "a.", "CON", "../../up", "x" * 300, ""):
        run = new_run_dir(runs, name)
        assert run.parent == runs and run.is_dir()
        assert file_name_problem(run.name) is None, run.name


def test_a_new_projects_lora_name_is_safe(tmp_path):
    from studio.project import create_project, lora_name

    assert lora_name(Path("My Cat!")) == "my-cat"
    assert lora_name(Path("CON")) == "con_"
    assert lora_name(Path("!!!")) == "lora"
    project = create_project(tmp_path / "aux", "sd15-character")
    assert load_project(project).output.name == "aux_"  # loads: the name it was given passes the check


def test_imported_images_that_differ_only_by_case_stay_two_files(tmp_path):
    from studio.dataset.importer import import_copies, import_folder

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name, data in ((a, "cat.png", b"first"), (b, "CAT.PNG", b"second"), (b, "x:y.png", b"third")):
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    dest = tmp_path / "project" / "dataset"
    copies = import_copies([a / "cat.png", b / "CAT.PNG", b / "x:y.png"], dest)
    assert [c.name for c in copies] == ["cat.png", "CAT-2.PNG", "x_y.png"]
    assert [c.read_bytes() for c in copies] == [b"first", b"second", b"third"]
    nested = tmp_path / "CON"
    nested.mkdir()
    (nested / "dog.png").write_bytes(b"dog")
    target = import_folder(nested, tmp_path / "project")
    assert target.name == "CON_" and (target / "dog.png").read_bytes() == b"dog"


def _tiny_lora(path: Path) -> Path:
    import torch

    from studio.formats.lora_file import LoraFile, LoraModule
    from tests.lora_maker import write_kohya

    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    lf = LoraFile(family="sd1", modules={name: LoraModule(name=name, down=torch.ones(2, 4), up=torch.ones(4, 2),
                                                          alpha=2.0)})
    return write_kohya(lf, path)


@pytest.mark.parametrize("name", ["mix.", "CON.safetensors", "a:b.safetensors", ".safetensors", "a\x00.safetensors"])
def test_mix_exports_and_bakes_refuse_a_bad_name_before_any_work(tmp_path, name):
    from studio.mix.bake import bake
    from studio.mix.export import export_merged
    from studio.mix.recipe import MixEntry, load_sources

    sources = load_sources([MixEntry(str(_tiny_lora(tmp_path / "a.safetensors")), 1.0)])
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / "exports" / name
    with pytest.raises(ConfigError, match=r"^the merged LoRA: .* cannot be a file name") as info:
        export_merged(sources, out)
    assert info.value.hint.startswith("choose another name, for example ")
    with pytest.raises(ConfigError, match=r"^the baked checkpoint: .* cannot be a file name"):
        bake(tmp_path / "no-model-needed", sources, out)  # refused before the base model is looked at
    assert sorted(tmp_path.rglob("*")) == before


def test_save_as_under_a_name_windows_cannot_hold_writes_nothing(tmp_path):
    from studio.project import save_project_as

    with pytest.raises(ConfigError, match=r"^the project file: 'aux.toml' cannot be a file name") as info:
        save_project_as(ProjectConfig(), None, tmp_path / "aux.toml")
    assert info.value.hint == "choose another name, for example 'aux_.toml'"
    assert list(tmp_path.iterdir()) == []


def test_a_host_name_with_odd_characters_makes_a_valid_event_file(tmp_path, monkeypatch):
    import socket

    from studio.train.tensorboard import EventWriter

    monkeypatch.setattr(socket, "gethostname", lambda: "PC:1/lab")
    writer = EventWriter(tmp_path)
    writer.close()
    assert writer.path.parent == tmp_path and ".PC_1_lab." in writer.path.name and writer.path.is_file()


def test_an_import_never_gives_two_images_one_caption(tmp_path):
    from studio.dataset.importer import import_copies

    dest = tmp_path / "dataset"
    dest.mkdir()
    (dest / "cat.png").write_bytes(b"existing")
    (dest / "cat.txt").write_text("the existing caption", encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    for name, caption in (("cat.jpg", "imported jpg"), ("dog.png", "dog png"), ("DOG.webp", "dog webp")):
        (src / name).write_bytes(name.encode())
        (src / name).with_suffix(".txt").write_text(caption, encoding="utf-8")
    copies = import_copies([src / "cat.jpg", src / "dog.png", src / "DOG.webp"], dest)
    assert [c.name for c in copies] == ["cat-2.jpg", "dog.png", "DOG-2.webp"]
    assert (dest / "cat.txt").read_text(encoding="utf-8") == "the existing caption"
    assert [c.with_suffix(".txt").read_text(encoding="utf-8") for c in copies] == [
        "imported jpg", "dog png", "dog webp"]
