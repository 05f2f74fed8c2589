"""NaN, ±∞, 1e30, 1e308 and 40-digit integers everywhere a number is read: every numeric setting of the project
file (as TOML and as the settings text the window sends the worker), the CLI flags, the preview request,
resume state files and cache entries. Each is refused with a message naming the field, or — for caches —
treated as a miss, before anything is written.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import fields
from pathlib import Path
from typing import get_args, get_origin, get_type_hints

import pytest

from studio.cli import main
from studio.config import SECTIONS, ProjectConfig, apply_mapping, section_type
from studio.errors import ConfigError, StudioError
from tests.faults.hostile_inputs import HOSTILE_FLOATS, clear_message, snapshot

FAULT_CONFIG = "numbers: project settings NaN/inf/huge"
FAULT_CLI = "numbers: CLI flags NaN/inf/huge"
FAULT_STATE = "numbers: resume state NaN/inf/huge"
FAULT_CACHE = "numbers: cache entries NaN/garbage"
#: integers no count, size or seed may be (the bounds of every integer field are far below)
HUGE_INTS = (("1e30", 10**30), ("2^63", 2**63), ("-2^63", -(2**63)))


def numeric_fields() -> list[tuple[str, str, object]]:
    """(section, key, type) of every number in a project file, lists of numbers included."""
    out = []
    for section in SECTIONS:
        hints = get_type_hints(section_type(section))
        for f in fields(section_type(section)):
            tp = hints[f.name]
            inner = get_args(tp)[0] if get_origin(tp) is tuple else tp
            if inner in (int, float):
                out.append((section, f.name, tp))
    return out


def _hostile_values(tp) -> list[tuple[str, object]]:
    values: list[tuple[str, object]] = [*HOSTILE_FLOATS, *HUGE_INTS]
    if get_origin(tp) is tuple:  # a list: one hostile element among good ones
        n = len(get_args(tp)) if get_args(tp)[-1] is not Ellipsis else 1
        return [(f"[{label}, …]", [v] + [0.5] * (n - 1)) for label, v in values]
    return values


CASES = [(s, k, label, value) for s, k, tp in numeric_fields() for label, value in _hostile_values(tp)]


def test_every_numeric_field_is_found():
    names = {f"{s}.{k}" for s, k, _ in numeric_fields()}
    assert {"optimizer.unet_lr", "optimizer.betas", "network.rank", "schedule.max_steps", "sampling.width",
            "dataset.repeats"} <= names and len(names) >= 50


@pytest.mark.parametrize("section, key, label, value", CASES, ids=[f"{s}.{k}={lbl}" for s, k, lbl, _ in CASES])
def test_config_refuses_hostile_numbers(section, key, label, value, ledger):
    try:
        apply_mapping(ProjectConfig(), {section: {key: value}}, "test")
    except ConfigError as exc:
        ok = f"[{section}] {key}" in str(exc) and clear_message(str(exc))
        ledger.record(FAULT_CONFIG, "clear" if ok else "crash", str(exc))
        assert ok, str(exc)
        return
    ledger.record(FAULT_CONFIG, "crash", f"{section}.{key} = {label} accepted")
    pytest.fail(f"[{section}] {key} = {label} was accepted")


@pytest.mark.parametrize("text, expected", [
    ("[optimizer]\nunet_lr = nan\n", "[optimizer] unet_lr is nan, expected a finite number"),
    ("[optimizer]\nbetas = [nan, 0.999]\n", "[optimizer] betas[0] is nan, expected a finite number"),
    ("[optimizer]\nbetas = [0.9, 1.5]\n", "[optimizer] betas[1] is 1.5, expected a value between 0.0 and"),
    ("[network]\nalpha = inf\n", "[network] alpha is inf, expected a finite number"),
    ("[schedule]\nmax_steps = 1000000000000000000000000000000\n", "[schedule] max_steps is 10000000000000"),
    ("[sampling]\nguidance_scale = -inf\n", "[sampling] guidance_scale is -inf, expected a finite number"),
    ("[dataset]\nrepeats = 1000000000\n", "[dataset] repeats is 1000000000, expected a value between 1 and 1000"),
])
def test_project_file_and_worker_settings_name_the_key(tmp_path, text, expected, ledger):
    from studio.config import load_project
    from studio.config import loads_project

    path = tmp_path / "project.toml"
    path.write_text(text)
    for load in (lambda: load_project(path), lambda: loads_project(text, "the window's settings")):
        with pytest.raises(ConfigError) as info:
            load()
        ok = expected in str(info.value) and clear_message(str(info.value))
        ledger.record(FAULT_CONFIG, "clear" if ok else "crash", str(info.value))
        assert ok, str(info.value)


def test_betas_through_the_worker_never_reach_torch(ledger):
    """`Invalid beta parameter` was torch's text, on the bug path: now the settings are refused first."""
    from studio.config import loads_project

    for betas in ("[1.5, 0.999]", "[0.9, nan]", "[-0.1, 0.9]", "[0.9, 1.0]"):
        with pytest.raises(ConfigError, match=r"\[optimizer\] betas\[[01]\]") as info:
            loads_project(f"[optimizer]\nbetas = {betas}\n", "settings")
        ledger.record(FAULT_CONFIG, "clear" if "Invalid beta" not in str(info.value) else "crash", str(info.value))


# --------------------------------------------------------------------------------------------------
# CLI flags


@pytest.mark.parametrize("flag, value, expected", [
    ("--lr", "nan", "[optimizer] unet_lr is nan, expected a finite number"),
    ("--lr", "inf", "[optimizer] unet_lr is inf, expected a finite number"),
    ("--lr", "1e30", "[optimizer] unet_lr is 1e+30, expected a value between 0.0 and 1.0"),
    ("--alpha", "-inf", "[network] alpha is -inf, expected a finite number"),
    ("--alpha", "1e308", "[network] alpha is 1e+308, expected a value between 0.0 and 4096.0"),
    ("--steps", str(10**30), f"[schedule] max_steps is {10**30}, expected a value between 1 and 10000000"),
    ("--rank", "-1", "[network] rank is -1, expected a value between 1 and 1024"),
    ("--resolution", str(2**63), f"[dataset] resolution is {2**63}, expected a value between 64 and 2048"),
    ("--batch-size", "0", "[schedule] batch_size is 0, expected a value between 1 and 256"),
])
def test_train_flags(capsys, tmp_path, flag, value, expected, ledger):
    out = tmp_path / "out"
    code = main(["train", "--model", str(tmp_path / "m"), "--data", str(tmp_path), "--out", str(out), f"{flag}={value}",
                 "--quiet"])
    _, err = capsys.readouterr()
    ok = code == 2 and expected in err and clear_message(err) and not out.exists()
    ledger.record(FAULT_CLI, "clear" if ok else "crash", err)
    assert code == 2 and f"error: command line: {expected}" in err, err
    assert clear_message(err) and not out.exists()


def test_demo_and_check_dataset_flags(capsys, tmp_path, ledger):
    for argv, expected in (
        (["demo", "--out", str(tmp_path / "demo"), "--steps", str(10**30), "--quiet"],
         f"[schedule] max_steps is {10**30}"),
        (["check-dataset", str(tmp_path), "--resolution", str(10**30)],
         f"--resolution is {10**30}, expected a whole number between 0 and 8192"),
    ):
        before = snapshot(tmp_path)
        code = main(argv)
        _, err = capsys.readouterr()
        ok = code == 2 and expected in err and clear_message(err)
        ledger.record(FAULT_CLI, "clear" if ok else "crash", err)
        assert ok, err
        if argv[0] == "check-dataset":
            assert snapshot(tmp_path) == before


def test_preview_requests(ledger):
    from studio.mix.request import MixEntry, RenderRequest

    for changes, expected in (({"guidance": math.nan}, "guidance scale is nan"),
                              ({"guidance": math.inf}, "guidance scale is inf"),
                              ({"seed": 2**63}, "seed is 9223372036854775808"),
                              ({"steps": 10**30}, "steps must be between 1 and 200")):
        with pytest.raises(ConfigError, match=expected):
            RenderRequest(prompt="x", **changes).validate()
        ledger.record(FAULT_CLI, "clear")
    with pytest.raises(ConfigError, match="x.safetensors: strength is nan"):
        RenderRequest(prompt="x", loras=(MixEntry("x.safetensors"),)).with_strength(0, math.nan)


# --------------------------------------------------------------------------------------------------
# resume state: a checkpoint's state.json with hostile numbers


@pytest.mark.parametrize("field", ["step", "epoch", "index", "rank"])
@pytest.mark.parametrize("label, value", [("nan", math.nan), ("inf", math.inf), ("1e30", 1e30),
                                          ("10^30", 10**30), ("2^63", 2**63), ("-1", -1)])
def test_resume_state_numbers(tmp_path, field, label, value, ledger):
    from studio.train import checkpoint as ckpt
    from tests.faults.test_damaged_checkpoints import write_checkpoint

    path = write_checkpoint(tmp_path / "run")
    state = json.loads((path / "state.json").read_text())
    state[field] = value
    (path / "state.json").write_text(json.dumps(state))  # json writes NaN / Infinity, which json reads back
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as info:
        ckpt.read_position(path)
    ok = "damaged checkpoint" in str(info.value) and clear_message(str(info.value)) and snapshot(tmp_path) == before
    ledger.record(FAULT_STATE, "clear" if ok else "crash", str(info.value))
    assert ok, str(info.value)


# --------------------------------------------------------------------------------------------------
# cache entries


def _image(path: Path, seed: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((80, 96, 3)) * 255).astype("uint8")).save(path)
    return path


def test_latent_cache_discards_nonfinite_entries(tmp_path, ledger):
    import torch

    from studio.train.latent_cache import CacheKey, LatentCache

    image = _image(tmp_path / "a.png")
    cache = LatentCache(tmp_path / "cache")
    key = CacheKey.for_image(image, (64, 64), flip=False, vae="v", seed=0)
    for label, bad in (("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)):
        latents = torch.zeros(4, 8, 8)
        latents[1, 2, 3] = bad
        cache.file(key).unlink(missing_ok=True)
        cache.put(key, {"latents": latents})
        assert not cache.file(key).exists()  # never written
        from safetensors.torch import save_file

        cache.folder.mkdir(exist_ok=True)
        save_file({"latents": latents}, str(cache.file(key)))  # an entry written by an older version
        found = cache.get(key)
        ledger.record(FAULT_CACHE, "clear" if found is None else "crash", f"latent {label}")
        assert found is None
    good = torch.ones(4, 8, 8)
    cache.put(key, {"latents": good})
    assert torch.equal(cache.get(key)["latents"], good)


def test_latent_cache_does_not_trust_size_and_mtime(tmp_path, ledger):
    import os

    from studio.train.latent_cache import CacheKey

    image = _image(tmp_path / "a.png")
    st = image.stat()
    before = CacheKey.for_image(image, (64, 64), flip=False, vae="v", seed=0).digest()
    data = bytearray(image.read_bytes())
    data[-40:] = b"\0" * 40  # same length, other bytes, the old timestamp put back (as `cp -p` would)
    image.write_bytes(bytes(data))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert image.stat().st_size == st.st_size and image.stat().st_mtime_ns == st.st_mtime_ns
    after = CacheKey.for_image(image, (64, 64), flip=False, vae="v", seed=0).digest()
    ledger.record(FAULT_CACHE, "clear" if after != before else "crash", "latent key for same size+mtime")
    assert after != before


def test_check_cache_does_not_trust_size_and_mtime(tmp_path, monkeypatch, capsys, ledger):
    import os

    monkeypatch.setenv("LORA_STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    image = _image(data / "a.png")
    _image(data / "b.png", seed=1)
    assert main(["check-dataset", str(data), "--resolution", "64"]) == 0  # checked, cached
    capsys.readouterr()
    st = image.stat()
    image.write_bytes(b"\0" * st.st_size)  # garbage of the same size, the old timestamp put back
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    code = main(["check-dataset", str(data), "--resolution", "64"])
    out, err = capsys.readouterr()
    ok = code == 3 and "a.png" in out and "1 of 2 images will be used" in out
    ledger.record(FAULT_CACHE, "clear" if ok else "crash", out + err)
    assert ok, out + err


@pytest.mark.parametrize("entries", [[1, 2], None, 5, "x", {"a.png": None}, {"a.png": [1]},
                                     {"a.png": {"size": math.nan, "mtime_ns": math.inf}}, {"a.png": {}}],
                         ids=["list", "null", "number", "string", "entry-null", "entry-list", "entry-nan",
                              "entry-empty"])
def test_check_cache_with_garbage_entries(tmp_path, monkeypatch, capsys, entries, ledger):
    from studio.dataset.check import CACHE_VERSION, _cache_file
    from studio.dataset.thumbnails import default_cache_root

    monkeypatch.setenv("LORA_STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    _image(data / "a.png")
    file = _cache_file(default_cache_root() / "checks", data, 64)
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps({"version": CACHE_VERSION, "folder": str(data), "entries": entries}))
    code = main(["check-dataset", str(data), "--resolution", "64"])
    out, err = capsys.readouterr()
    ok = code == 0 and "1 of 1 images will be used" in out and clear_message(out + err or "ok")
    ledger.record(FAULT_CACHE, "clear" if ok else "crash", out + err)
    assert ok, out + err
    assert "AttributeError" not in err and err == ""


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_one_nan_latent_in_the_cache_does_not_fail_later_runs(tiny_sd1, tmp_path, ledger):
    """The first run caches latents on disk; one entry is then overwritten with NaNs (as a bad GPU or an older
    version could leave it). The next run re-encodes that image and finishes; it used to fail every time with
    "the loss became nan" and a hint to lower the learning rate."""
    import torch
    from safetensors.torch import load_file, save_file

    from studio.events import Failed, Finished
    from studio.train.engine import run_training
    from tests.conftest import make_images, tiny_config

    project = tmp_path / "project"
    data = make_images(project / "images", n=4)
    cfg = tiny_config(tiny_sd1, data, project / "out", schedule={"max_steps": 2, "batch_size": 2},
                      dataset={"latent_cache": "disk"})
    (project / "project.toml").write_text("")
    first = list(run_training(cfg, project_file=project / "project.toml"))
    assert isinstance(first[-1], Finished), first[-1]
    entries = sorted((project / ".cache" / "latents").glob("*.safetensors"))
    assert len(entries) == 4
    poisoned = load_file(str(entries[0]))
    poisoned["latents"] = torch.full_like(poisoned["latents"], math.nan)
    save_file(poisoned, str(entries[0]))
    second = list(run_training(cfg, project_file=project / "project.toml"))
    ok = isinstance(second[-1], Finished)
    ledger.record(FAULT_CACHE, "clear" if ok else "crash", getattr(second[-1], "error", ""))
    assert ok, second[-1]
    log = [e for e in second if type(e).__name__ == "Log" and "latents:" in e.text]
    assert log and "3 from the disk cache, 1 encoded" in log[0].text
    assert torch.isfinite(load_file(str(entries[0]))["latents"]).all()  # the entry was rewritten, finite
