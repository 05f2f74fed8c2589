"""The rest of issue 17's cases, through the real CLI: each ends in our message (never the "this is a bug" path
or a library's text), leaves the user's files byte-identical and writes nothing outside the output folder.

Closed stdout; every dtype safetensors can hold in `inspect` and `mix`; names that are not UTF-8; preview sizes
the pipeline cannot render; `--out` naming a file; a runs folder or latent cache that cannot be written;
broken diffusers folders; repeat counts of a billion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.cli import main
from tests.conftest import make_images
from tests.faults.hostile_inputs import clear_message, non_utf8_name, snapshot

ROOT = Path(__file__).resolve().parents[2]
FAULT = "CLI: raw library errors and wrong answers"


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _train(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--out", str(out), "--steps", "1",
            "--resolution", "64", "--batch-size", "2", "--quiet", *extra]


def _lora(path: Path, dtype: torch.dtype | None = None) -> Path:
    from safetensors.torch import save_file

    from tests.faults.hostile_loras import good_modules

    tensors = {k: (v.to(dtype) if dtype is not None and v.dim() > 0 else v) for k, v in good_modules().items()}
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def _refused(ledger, code: int, err: str, expected: str, unchanged: bool = True) -> None:
    ok = code == 2 and expected in err and clear_message(err) and unchanged
    ledger.record(FAULT, "clear" if ok else ("lost" if not unchanged else "crash"), err)
    assert code == 2, err
    assert expected in err, err
    assert clear_message(err), err
    assert unchanged


# --------------------------------------------------------------------------------------------------


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
@pytest.mark.skipif(sys.platform == "win32", reason="a pipe closed under the writer is POSIX behaviour")
def test_a_closed_stdout_ends_inspect_quietly(tmp_path, ledger):
    """`inspect --json … | head -c 1`: the reader is gone before the first write; no BrokenPipeError text."""
    lora = _lora(tmp_path / "a.safetensors")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone: every write fails with EPIPE
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", LORA_STUDIO_SKIP_VERSION_CHECK="1")
    try:
        proc = subprocess.run([sys.executable, "-m", "studio.cli", "inspect", "--json", str(lora)], cwd=ROOT,
                              env=env, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=180)
    finally:
        os.close(write_end)
    ok = proc.returncode == 0 and "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr
    ledger.record(FAULT, "clear" if ok else "crash", proc.stderr)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


DTYPES = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float16, torch.bfloat16, torch.float32, torch.float64,
          torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]


@pytest.mark.parametrize("dtype", DTYPES, ids=[str(d).removeprefix("torch.") for d in DTYPES])
def test_inspect_and_mix_take_every_dtype(capsys, tmp_path, dtype, ledger):
    src = _lora(tmp_path / "a.safetensors", dtype)
    before = src.read_bytes()
    code, out, err = _cli(capsys, "inspect", "--json", str(src))
    assert code == 0 and clear_message(out) and "isfinite" not in err, err
    assert json.loads(out)["ranks"] == [4] and json.loads(out)["modules"] == 4
    code, out, err = _cli(capsys, "mix", f"{src}:0.5", "-o", str(tmp_path / "out" / "m.safetensors"))
    ok = code == 0 and Path(out.strip().splitlines()[-1]).is_file() and src.read_bytes() == before
    ledger.record(FAULT, "clear" if ok else "crash", err)
    assert ok, err
    from studio.formats.reader import read_lora

    read_lora(tmp_path / "out" / "m.safetensors")  # finite, loadable
    # the merged LoRA and its per-loader compatibility report, nothing else
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.safetensors", "m.compat.json", "m.safetensors"]


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_lora_whose_path_is_not_utf8(tmp_path, ledger):
    """Through a real process: the output path is printed as its own bytes, so a script can open it."""
    src = non_utf8_name(tmp_path, "lora", ".safetensors")
    if src is None:
        pytest.skip("this file system refuses names that are not UTF-8")
    shutil.copy2(_lora(tmp_path / "plain.safetensors"), src)
    before = src.read_bytes()
    target = non_utf8_name(tmp_path, "mixed", ".safetensors")
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    run = lambda *argv: subprocess.run([sys.executable, "-m", "studio.cli", *argv], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, timeout=300)
    inspected = run("inspect", os.fsencode(src))
    assert inspected.returncode == 0, inspected.stderr.decode(errors="replace")
    mixed = run("mix", os.fsencode(src) + b":0.7", "-o", os.fsencode(target))
    err = mixed.stderr.decode(errors="replace")
    ok = mixed.returncode == 0 and target.is_file() and src.read_bytes() == before
    ledger.record(FAULT, "clear" if ok else "crash", err)
    assert ok, err
    assert mixed.stdout.splitlines()[-1] == os.fsencode(target)  # the path's own bytes
    assert clear_message(err)
    from studio.formats.reader import read_lora

    assert read_lora(target).modules  # written and readable


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_an_image_whose_name_is_not_utf8_trains(capsys, tiny_sd1, tmp_path, ledger):
    data = make_images(tmp_path / "data", n=4)
    odd = non_utf8_name(data, "photo", ".png")
    if odd is None:
        pytest.skip("this file system refuses names that are not UTF-8")
    os.rename(data / "img000.png", odd)
    code, out, err = _cli(capsys, *_train(tiny_sd1, data, tmp_path / "out"))
    ok = code == 0 and (tmp_path / "out" / "lora.safetensors").is_file()
    ledger.record(FAULT, "clear" if ok else "crash", err)
    assert ok, err
    assert clear_message(err or "ok")


@pytest.mark.parametrize("side, expected", [(8, "[sampling] width is 8 px; previews need a multiple of 8 of at least"),
                                            (100, "[sampling] width is 100 px; previews need a multiple of 8")])
def test_preview_sizes_are_refused_before_training(tiny_sd1, image_folder, tmp_path, side, expected, ledger):
    from studio.events import Failed
    from tests.conftest import tiny_config

    cfg = tiny_config(tiny_sd1, image_folder, tmp_path / "out", sampling={"prompts": ("a photo",), "width": side})
    from studio.train.engine import run_training

    events = list(run_training(cfg))
    failed = events[-1]
    ok = (len(events) == 1 and isinstance(failed, Failed) and expected in failed.error
          and not (tmp_path / "out").exists())
    ledger.record(FAULT, "clear" if ok else "crash", getattr(failed, "error", ""))
    assert ok, events
    assert clear_message(failed.error + failed.hint)


def test_out_naming_a_file(capsys, tiny_sd1, image_folder, tmp_path, ledger):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    before = snapshot(tmp_path)
    code, out, err = _cli(capsys, *_train(tiny_sd1, image_folder, target))
    _refused(ledger, code, err, f"error: [output] directory {target} is a file, not a folder",
             snapshot(tmp_path) == before)


def test_a_project_whose_runs_folder_cannot_be_made(capsys, tiny_sd1, image_folder, tmp_path, ledger):
    """`runs` taken by a file (the same answer as a read-only project folder: nothing can be made there)."""
    from studio.config import ProjectConfig, save_project

    project = tmp_path / "project.toml"
    cfg = (ProjectConfig().with_section("model", path=str(tiny_sd1))
           .with_section("dataset", folders=(str(image_folder),), resolution=64)
           .with_section("schedule", max_steps=1, batch_size=2))
    save_project(cfg, project)
    (tmp_path / "runs").write_text("not a folder")
    before = snapshot(tmp_path)
    code, _, err = _cli(capsys, "train", str(project), "--quiet")
    _refused(ledger, code, err, f"the runs folder {tmp_path / 'runs'} is a file, not a folder",
             snapshot(tmp_path) == before)


def test_a_latent_cache_that_cannot_be_written_only_warns(capsys, tiny_sd1, tmp_path, ledger):
    from studio.config import ProjectConfig, save_project

    data = make_images(tmp_path / "images", n=4)
    project = tmp_path / "project.toml"
    cfg = (ProjectConfig().with_section("model", path=str(tiny_sd1))
           .with_section("dataset", folders=("images",), resolution=64, latent_cache="disk")
           .with_section("schedule", max_steps=1, batch_size=2).with_section("output", directory="out"))
    save_project(cfg, project)
    (tmp_path / ".cache").write_text("a file where the cache folder goes")
    code, out, err = _cli(capsys, "train", str(project), "--quiet")
    ok = code == 0 and "warning: the latent cache" in err and "cannot be written" in err
    ledger.record(FAULT, "clear" if ok else "crash", err)
    assert ok, err
    assert (tmp_path / ".cache").read_text() == "a file where the cache folder goes"


@pytest.mark.parametrize("damage, expected", [
    ("unet-config-missing", "base model unet: config.json is missing"),
    ("unet-config-truncated", "unet/config.json is not valid JSON (truncated or damaged)"),
    ("text-encoder-2-empty", "the entry `text_encoder_2` is [], expected [library, class]"),
    ("index-list", "model_index.json holds list, not a JSON object"),
])
def test_broken_diffusers_folders(capsys, tiny_sd1, image_folder, tmp_path, damage, expected, ledger):
    model = tmp_path / "model"
    shutil.copytree(tiny_sd1, model)
    if damage == "unet-config-missing":
        (model / "unet" / "config.json").unlink()
    elif damage == "unet-config-truncated":
        text = (model / "unet" / "config.json").read_text()
        (model / "unet" / "config.json").write_text(text[: len(text) // 2])
    elif damage == "text-encoder-2-empty":
        index = json.loads((model / "model_index.json").read_text())
        (model / "model_index.json").write_text(json.dumps({**index, "text_encoder_2": []}))
    else:
        (model / "model_index.json").write_text("[]")
    before = snapshot(tmp_path)
    code, _, err = _cli(capsys, *_train(model, image_folder, tmp_path / "out"))
    _refused(ledger, code, err, expected, snapshot(tmp_path) == before)
    assert "huggingface" not in err


def test_a_billion_repeats(capsys, tiny_sd1, tmp_path, ledger):
    data = tmp_path / "data"
    make_images(data / "1000000000_cat", n=2)
    before = snapshot(tmp_path)
    code, _, err = _cli(capsys, *_train(tiny_sd1, data, tmp_path / "out"))
    _refused(ledger, code, err, "1000000000_cat: 1,000,000,000 repeats per epoch", snapshot(tmp_path) == before)
    assert "hint: rename the folder with a smaller `N_` prefix (e.g. `10_cat`)" in err


def test_a_billion_repeats_in_dataset_json(tmp_path, ledger):
    from studio.dataset.state import load_state
    from studio.errors import DatasetError

    (tmp_path / "dataset.json").write_text(json.dumps({"version": 1, "repeats": {"images": 10**9}}))
    with pytest.raises(DatasetError, match="repeats must be a whole number from 1 to 1000, got 1000000000"):
        load_state(tmp_path)
    ledger.record(FAULT, "clear")
