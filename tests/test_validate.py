"""`studio.validate`: the rules between fields and the disk check, each naming its field as data."""

from __future__ import annotations

import pytest

from studio.config import ProjectConfig, loads_project
from studio.errors import ConfigError, Problem
from studio.validate import check_files, errors_of, require_valid, validate
from tests.conftest import make_images


def keys(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.section, p.key) for p in problems]


def complete() -> ProjectConfig:
    return ProjectConfig().with_section("model", path="m").with_section("dataset", folders=("d",))


def test_a_complete_config_has_no_problems():
    assert validate(complete()) == []


def test_every_rule_between_fields_is_reported_at_once_with_its_field():
    cfg = (complete().with_section("network", type="loha", dora=True, rslora=True, dropout=0.1, alpha=0.0)
           .with_section("dataset", folders=("d",), resolution=100)
           .with_section("schedule", max_steps=10, warmup_steps=20)
           .with_section("sampling", width=100, height=32, every_n_steps=5)
           .with_section("output", name="a/b", save_every_n_steps=50))
    problems = validate(cfg)
    assert keys(errors_of(problems)) == [
        ("output", "name"), ("network", "dora"), ("network", "rslora"), ("network", "dropout"),
        ("network", "alpha"), ("schedule", "warmup_steps"), ("dataset", "resolution"),
        ("sampling", "width"), ("sampling", "height")]
    assert keys([p for p in problems if p.severity == "warning"]) == [("sampling", "prompts"),
                                                                       ("output", "save_every_n_steps")]
    by_key = {(p.section, p.key): p for p in problems}
    assert by_key["network", "dora"].message == "[network] dora works with the lora and locon types, not loha"
    assert by_key["network", "dora"].hint == "turn dora off, or choose type lora or locon"
    assert by_key["sampling", "width"].message == ("[sampling] width is 100 px; previews need a multiple of 8 of at "
                                                   "least 64 px")
    assert by_key["sampling", "width"].hint == "set [sampling] width to e.g. 96"
    assert by_key["sampling", "height"].hint == "set [sampling] height to e.g. 64"
    assert by_key["schedule", "warmup_steps"].message == "warm-up (20 steps) is longer than the run (10 steps)"


def test_pissa_and_dora_and_the_empty_project():
    cfg = complete().with_section("network", init="pissa", dora=True)
    assert keys(validate(cfg)) == [("network", "init")]
    assert keys(validate(ProjectConfig())) == [("model", "path"), ("dataset", "folders")]


def test_a_zero_learning_rate_is_a_warning_not_a_refusal():
    (problem,) = validate(complete().with_section("optimizer", unet_lr=0.0))
    assert (problem.key, problem.severity) == ("unet_lr", "warning")
    trained = complete().with_section("optimizer", unet_lr=0.0).with_section("network", train_text_encoder=True)
    assert validate(trained) == []  # the text encoder still learns


def test_check_files_names_each_file_field(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "taken").write_text("a file where the output folder goes")
    cfg = (ProjectConfig().with_section("model", path="notes.txt")
           .with_section("dataset", folders=("empty",), regularization_folders=("gone",))
           .with_section("sampling", validation_images=("nope.png",))
           .with_section("output", directory="taken"))
    found = {(p.section, p.key): p for p in check_files(cfg, tmp_path / "project.toml")}
    assert list(found) == [("model", "path"), ("dataset", "folders"), ("dataset", "regularization_folders"),
                           ("sampling", "validation_images"), ("output", "directory")]
    assert found["model", "path"].message == ("notes.txt is not a model file (neither safetensors nor a PyTorch "
                                              "checkpoint)")
    assert found["dataset", "folders"].message == f"no images found in {tmp_path / 'empty'}"
    assert found["dataset", "regularization_folders"].message == f"{tmp_path / 'gone'}: folder not found"
    assert found["output", "directory"].message == f"[output] directory {tmp_path / 'taken'} is a file, not a folder"


def test_check_files_passes_real_files(tmp_path, tiny_sd1):
    data = make_images(tmp_path / "data", n=2, size=(64, 64))
    cfg = ProjectConfig().with_section("model", path=str(tiny_sd1)).with_section("dataset", folders=("data",))
    assert check_files(cfg, tmp_path / "project.toml") == []


def test_a_broken_ckpt_is_named_in_our_words(tmp_path):
    import torch

    torch.save({"w": torch.zeros(4)}, tmp_path / "good.ckpt")
    raw = (tmp_path / "good.ckpt").read_bytes()
    (tmp_path / "model.ckpt").write_bytes(raw[: len(raw) // 2])  # a download cut short
    cfg = complete().with_section("model", path="model.ckpt")
    (problem,) = [p for p in check_files(cfg, tmp_path / "p.toml") if p.section == "model"]
    assert problem.message == "model.ckpt: cannot read it: not a valid checkpoint (damaged or not a PyTorch file)"
    assert "torch" not in (problem.message + problem.hint).lower().replace("pytorch file", "")


def test_config_error_carries_section_key_and_every_problem():
    with pytest.raises(ConfigError) as info:
        loads_project("[network]\ndropout = 'abc'\n", "settings")
    assert (info.value.section, info.value.key) == ("network", "dropout")
    assert info.value.problems == (Problem("network", "dropout", "[network] dropout is 'abc', expected a number"),)
    assert str(info.value) == "settings: [network] dropout is 'abc', expected a number"
    cfg = complete().with_section("network", type="lokr", dora=True).with_section("dataset", folders=("d",),
                                                                                   resolution=100)
    with pytest.raises(ConfigError) as info:
        require_valid(cfg, files=False)
    assert keys(list(info.value.problems)) == [("network", "dora"), ("dataset", "resolution")]
    assert str(info.value).splitlines() == [p.message for p in info.value.problems]
    assert (info.value.section, info.value.key) == ("network", "dora")


def test_the_engine_refuses_a_rule_before_reading_anything(tmp_path, tiny_sd1):
    from studio.events import Failed
    from studio.train.engine import run_training
    from tests.conftest import tiny_config

    data = make_images(tmp_path / "data", n=2, size=(64, 64))
    cfg = tiny_config(tiny_sd1, data, tmp_path / "out", network={"type": "loha", "dora": True})
    (event,) = list(run_training(cfg))
    assert isinstance(event, Failed) and event.error == "[network] dora works with the lora and locon types, not loha"
    assert not (tmp_path / "out").exists()


def test_the_workers_training_job_refuses_before_the_model_loads(tmp_path):
    from studio.config import dumps_project
    from studio.job_requests import TrainRequest
    from studio.worker.jobs import train_job

    (tmp_path / "notes.txt").write_text("not a model")
    cfg = (ProjectConfig().with_section("model", path="notes.txt").with_section("dataset", folders=("gone",))
           .with_section("network", type="loha", dora=True))
    request = TrainRequest(config_toml=dumps_project(cfg), project_file=str(tmp_path / "project.toml"))
    with pytest.raises(ConfigError) as info:
        next(iter(train_job(request, None)))
    assert keys(list(info.value.problems)) == [("network", "dora"), ("model", "path"), ("dataset", "folders")]
    assert "notes.txt is not a model file" in str(info.value) and "gone: folder not found" in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "notes.txt"]  # no run folder, nothing written


def test_a_bad_flag_is_told_without_importing_the_engine():
    import subprocess
    import sys

    code = ("import sys; from studio.cli import main; rc = main(['train', '--network-dropout', 'abc']); "
            "print('torch' in sys.modules, 'studio.train.engine' in sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: command line: [network] dropout is 'abc', expected a number"]
    assert done.stdout.split() == ["False", "False"]
