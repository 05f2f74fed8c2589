"""`lora-studio train`'s generated flags: one per config field, help from `field_help`, `--set` for any field."""

from __future__ import annotations

import re

import pytest

from studio.cli import main
from studio.cli.config_flags import apply_overrides, overrides
from studio.cli.train_cmd import build_config
from studio.config import ProjectConfig
from studio.errors import ConfigError
from studio.field_info import all_fields, field_help


def help_entries(text: str) -> dict[str, str]:
    """`--flag` → its help text (whitespace collapsed), parsed from argparse's `--help` output."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if re.match(r"^  -", line):
            invocation, _, rest = line.strip().partition("  ")
            current = entries.setdefault(invocation.split()[0].rstrip(","), [])
            current.append(rest)
        elif current is not None and line.startswith("    "):
            current.append(line)
        else:
            current = None
    return {flag: " ".join(" ".join(parts).split()) for flag, parts in entries.items()}


@pytest.fixture
def train_help(capsys, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("COLUMNS", "5000")  # no wrapping: textwrap would break "sd-scripts" at its hyphen
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return help_entries(capsys.readouterr().out)


def test_every_field_has_a_flag_whose_help_is_field_help(train_help):
    fields = list(all_fields())
    assert len(fields) > 80
    for info in fields:
        assert info.flag in train_help, info.flag
        assert train_help[info.flag] == " ".join(field_help(info.section, info.key).split()), info.flag
    assert train_help["--network-rank"] == ("LoRA rank (network dim): capacity of the adapter. 8-32 is typical. "
                                            "Range: 1 – 1,024 Project file: [network] rank")
    # a % in a help text (gradient checkpointing's "20-30% slower") survives argparse's %-formatting
    assert "20-30% slower" in train_help["--schedule-gradient-checkpointing"]


def _args(*argv: str):
    from studio.cli import build_parser

    return build_parser().parse_args(["train", *argv])


def test_flags_old_names_and_set_reach_the_config(tmp_path):
    args = _args("--network-rank", "32", "--alpha", "4", "--network-type", "locon", "--no-output-tensorboard",
                 "--optimizer-betas", "0.8", "0.95", "--data", str(tmp_path / "a"), "--dataset-folders", "b",
                 "--set", "sampling.prompts=['a photo', 'a drawing']", "--set", "output.trigger_phrase=sks dog",
                 "--set", "schedule.max_steps=12")
    cfg, problems = apply_overrides(ProjectConfig(), overrides(args))
    assert problems == []
    assert (cfg.network.rank, cfg.network.alpha, cfg.network.type) == (32, 4.0, "locon")
    assert cfg.output.tensorboard is False and cfg.optimizer.betas == (0.8, 0.95)
    assert cfg.dataset.folders == (str(tmp_path / "a"), str((tmp_path.cwd() / "b").resolve()))
    assert cfg.sampling.prompts == ("a photo", "a drawing") and cfg.output.trigger_phrase == "sks dog"
    assert cfg.schedule.max_steps == 12


def test_set_names_a_typo(capsys):
    code = main(["train", "--set", "network.rnak=8"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key `rnak` in [network] (did you mean `rank`?)" in err


def test_every_problem_is_printed_at_once(capsys, tmp_path):
    out = tmp_path / "out"
    code = main(["train", "--network-dropout", "abc", "--network-alpha=-5", "--model-family", "sd3",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "error: command line: [model] family is 'sd3', expected one of 'auto', 'sd1', 'sd2', 'sd2-v', 'sdxl'",
        "error: command line: [network] alpha is -5.0, expected a value between 0.0 and 4096.0",
        "error: command line: [network] dropout is 'abc', expected a number"]
    assert not out.exists()


def test_rules_and_files_are_checked_before_anything_loads(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    code = main(["train", "--model", str(tmp_path / "notes.txt"), "--data", str(tmp_path / "gone"),
                 "--network-type", "loha", "--network-dora", "--sampling-width", "100", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: [network] dora works with the lora and locon types, not loha",
                      "error: [sampling] width is 100 px; previews need a multiple of 8 of at least 64 px",
                      "error: notes.txt is not a model file (neither safetensors nor a PyTorch checkpoint)",
                      f"error: {tmp_path / 'gone'}: folder not found"]
    assert "hint: set [sampling] width to e.g. 96" in err


def test_a_project_file_then_flags(tmp_path):
    project = tmp_path / "project.toml"
    project.write_text('[network]\nrank = 4\n[model]\npath = "m"\n', encoding="utf-8")
    (tmp_path / "m").mkdir()
    args = _args(str(project), "--network-rank", "8")
    cfg, problems = apply_overrides(ProjectConfig().with_section("network", rank=4), overrides(args))
    assert cfg.network.rank == 8 and problems == []
    with pytest.raises(ConfigError) as info:  # the folder `m` is no model: the disk check says so, with its field
        build_config(args)
    assert str(info.value).splitlines() == ["add a folder of training images",
                                            f"{tmp_path / 'm'}: not a diffusers model folder (no model_index.json)"]
    assert (info.value.section, info.value.key) == ("dataset", "folders")
    assert [(p.section, p.key) for p in info.value.problems] == [("dataset", "folders"), ("model", "path")]
