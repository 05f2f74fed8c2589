"""`lora-studio train` on bad input: one clear line, no traceback, no exported file, non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli import main
from tests.conftest import make_images


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _outputs(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".tmp") or p.name.endswith(".tmp")]


def _train_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--out", str(out), "--steps", "2",
            "--resolution", "64", "--batch-size", "2", "--quiet", *extra]


def test_empty_dataset_folder(capsys, tiny_sd1, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = _run(capsys, *_train_args(tiny_sd1, empty, tmp_path / "out"))
    assert code == 2
    assert f"error: no images found in {empty}" in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "out").exists()


def test_folder_of_non_images(capsys, tiny_sd1, tmp_path):
    data = tmp_path / "docs"
    data.mkdir()
    (data / "notes.txt").write_text("not an image")
    (data / "table.csv").write_text("a,b\n1,2\n")
    code, _, err = _run(capsys, *_train_args(tiny_sd1, data, tmp_path / "out"))
    assert code == 2 and "no images found" in err and "Traceback" not in err

    (data / "fake.png").write_text("I am text pretending to be a PNG")
    code, _, err = _run(capsys, *_train_args(tiny_sd1, data, tmp_path / "out"))
    assert code == 2
    assert "none of the images could be read" in err and "fake.png" in err
    assert "Traceback" not in err
    assert _outputs(tmp_path / "out") == []


def test_corrupt_jpeg_is_skipped_by_name_and_training_goes_on(capsys, tiny_sd1, tmp_path):
    data = make_images(tmp_path / "mixed", n=4)
    from PIL import Image

    Image.new("RGB", (128, 128), (200, 30, 30)).save(tmp_path / "whole.jpg", quality=95)
    (data / "broken.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    code, out, err = _run(capsys, *_train_args(tiny_sd1, data, tmp_path / "out"))
    assert code == 0, err
    assert "broken.jpg" in err and "skipped" in err
    exported = Path(out.strip().splitlines()[-1])
    assert exported == (tmp_path / "out" / "lora.safetensors").resolve() and exported.is_file()


def test_wrong_base_model_path(capsys, image_folder, tmp_path):
    missing = tmp_path / "no-such-model.safetensors"
    code, out, err = _run(capsys, *_train_args(missing, image_folder, tmp_path / "out"))
    assert code == 2
    assert f"error: base model not found: {missing}" in err
    assert "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_misspelt_key_in_project_file(capsys, tmp_path):
    project = tmp_path / "project.toml"
    project.write_text("[network]\nrnak = 16\n")
    code, _, err = _run(capsys, "train", str(project))
    assert code == 2
    line = err.strip().splitlines()[0]
    assert line.startswith(f"error: {project}: unknown key `rnak` in [network]")
    assert "did you mean `rank`?" in line and "Traceback" not in err


@pytest.mark.parametrize("text, expected", [
    ("[schedule]\nmax_steps = \"many\"\n", "[schedule] max_steps is 'many', expected an integer"),
    ("[network]\nrank = 0\n", "[network] rank is 0, expected a value between 1 and 1024"),
    ("[netwrk]\nrank = 8\n", "unknown section [netwrk] (did you mean [network]?)"),
    ("[network\nrank = 8\n", "not valid TOML"),
    ("format_version = 99\n", "written by a newer LoRA Studio"),
])
def test_project_file_errors_name_the_file_and_key(capsys, tmp_path, text, expected):
    project = tmp_path / "p.toml"
    project.write_text(text)
    code, _, err = _run(capsys, "train", str(project))
    assert code == 2 and expected in err and str(project) in err and "Traceback" not in err


def test_debug_flag_shows_the_traceback(tmp_path):
    from studio.errors import ConfigError

    project = tmp_path / "p.toml"
    project.write_text("[network]\nrnak = 16\n")
    with pytest.raises(ConfigError):
        main(["--debug", "train", str(project)])
