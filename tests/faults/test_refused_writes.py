"""Refused operations write nothing: `demo --out` over the user's folder, a refused resume, a NaN mix.

Each case asserts the message (ours, naming the file or value and the fix), that every file the user had is
byte-identical afterwards, and that nothing was written outside the output folder (or, for a refusal,
nowhere at all).
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from studio.cli import main
from studio.events import Checkpoint, Failed
from studio.train.engine import run_training
from tests.conftest import tiny_config
from tests.faults.hostile_inputs import HOSTILE_FLOATS, clear_message, snapshot

FAULT_DEMO = "refused writes: demo --out a folder not its own"
FAULT_RESUME = "refused writes: resume with other settings or a forged state"
FAULT_MIX = "refused writes: mix strengths and block weights NaN/inf/huge"


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------------
# demo --out


def _users_folder(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "my-checkpoint.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " * 50)
    (root / "notes.txt").write_text("my notes\n")
    return root


def test_demo_refuses_a_folder_that_is_not_its_own(capsys, tmp_path, ledger):
    mine = _users_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    code, out, err = _cli(capsys, "demo", "--out", str(mine), "--quiet")
    ok = code == 2 and snapshot(tmp_path) == before
    ledger.record(FAULT_DEMO, "clear" if ok else "lost", err)
    assert code == 2 and out == ""
    assert f"error: {mine.resolve()} is not empty and is not a demo project folder" in err
    assert "hint: give --out a new or empty folder" in err and clear_message(err)
    assert snapshot(tmp_path) == before  # my-checkpoint.safetensors is still there, byte for byte


def test_demo_refuses_a_file_as_its_folder(capsys, tmp_path, ledger):
    target = tmp_path / "file.txt"
    target.write_bytes(b"keep me")
    code, out, err = _cli(capsys, "demo", "--out", str(target), "--quiet")
    ledger.record(FAULT_DEMO, "clear" if code == 2 and target.read_bytes() == b"keep me" else "lost", err)
    assert code == 2 and out == ""
    assert f"error: {target.resolve()} is a file, not a folder" in err and clear_message(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"] and target.read_bytes() == b"keep me"


def test_demo_in_a_read_only_parent_says_so(capsys, tmp_path, ledger):
    import os

    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        pytest.skip("root writes through permissions (and Windows has no POSIX modes)")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        code, _, err = _cli(capsys, "demo", "--out", str(parent / "demo"), "--quiet")
    finally:
        parent.chmod(0o755)
    ledger.record(FAULT_DEMO, "clear" if code == 2 and clear_message(err) else "crash", err)
    assert code == 2 and "cannot create the demo folder (Permission denied)" in err and clear_message(err)
    assert list(parent.iterdir()) == []


def test_demo_under_a_file_says_so(capsys, tmp_path, ledger):
    """`--out notes.txt/demo`: the folder cannot be made (the same path as a read-only parent, for root too)."""
    parent = tmp_path / "notes.txt"
    parent.write_bytes(b"mine")
    code, out, err = _cli(capsys, "demo", "--out", str(parent / "demo"), "--quiet")
    ok = code == 2 and clear_message(err) and parent.read_bytes() == b"mine"
    ledger.record(FAULT_DEMO, "clear" if ok else "crash", err)
    assert code == 2 and out == "" and clear_message(err), err
    assert f"{parent.resolve() / 'demo'}: cannot create the demo folder (Not a directory)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and parent.read_bytes() == b"mine"


def test_demo_stopped_before_the_first_step_exits_quietly(capsys, tmp_path, monkeypatch, ledger):
    """Ctrl+C while the demo prepares: the real SIGINT handler stops the run before step 1; no IndexError."""
    import studio.train.engine as engine

    real = engine.run_training

    def interrupted(*args, **kwargs):
        for event in real(*args, **kwargs):
            if type(event).__name__ == "Started":
                signal.raise_signal(signal.SIGINT)  # the user presses Ctrl+C once
            yield event

    monkeypatch.setattr(engine, "run_training", interrupted)
    out_dir = tmp_path / "demo"
    code, out, err = _cli(capsys, "demo", "--out", str(out_dir), "--quiet")
    ledger.record(FAULT_DEMO, "clear" if code == 130 and clear_message(err) else "crash", err)
    assert code == 130 and out == ""
    assert "stopped before the first step; nothing was exported" in err and clear_message(err)
    assert not list(out_dir.glob("*.safetensors"))
    # the folder is the demo's now (marked), so a second run may reuse it
    assert (out_dir / ".lora-studio-demo").is_file()


def test_demo_reuses_its_own_folder(tmp_path):
    from studio.demo import MARKER, check_demo_folder

    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "leftover.txt").write_text("x")
    with pytest.raises(Exception, match="not a demo project folder"):
        check_demo_folder(folder)
    (folder / MARKER).write_text("")
    check_demo_folder(folder)  # marked: accepted
    check_demo_folder(tmp_path / "new")  # missing: accepted
    (tmp_path / "empty").mkdir()
    check_demo_folder(tmp_path / "empty")  # empty: accepted


# --------------------------------------------------------------------------------------------------
# resume


@pytest.fixture(scope="module")
def finished_run(tiny_sd1, image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume-run")
    cfg = tiny_config(tiny_sd1, image_folder, out / "out", schedule={"max_steps": 1, "batch_size": 2},
                      network={"rank": 4, "alpha": 4.0})
    events = list(run_training(cfg))
    assert not isinstance(events[-1], Failed), events[-1]
    checkpoint = [Path(e.path) for e in events if isinstance(e, Checkpoint)][-1]
    export = Path(events[-1].outputs[-1])
    return cfg, checkpoint, export


def _refused_resume(cfg, checkpoint: Path, root: Path, ledger, expected: str, hint: str = "") -> None:
    before = snapshot(root)
    events = list(run_training(cfg, resume_from=checkpoint))
    failed = events[-1]
    unchanged = snapshot(root) == before
    good = isinstance(failed, Failed) and expected in failed.error and clear_message(failed.error + failed.hint)
    ledger.record(FAULT_RESUME, "lost" if not unchanged else "clear" if good else "crash",
                  getattr(failed, "error", repr(failed)))
    assert len(events) == 1 and isinstance(failed, Failed), events
    assert expected in failed.error, failed.error
    assert hint in failed.hint, failed.hint
    assert clear_message(failed.error + failed.hint), failed
    assert unchanged, "the refused resume changed the run folder (config.toml, events.jsonl, …)"


@pytest.mark.parametrize("section, changes, expected, hint", [
    ("network", {"targets": "attention"}, "the checkpoint does not match the network", "its config.toml"),
    ("network", {"dora": True}, "trained with other network settings (DoRA", "its config.toml"),
    ("network", {"rank": 8}, "the checkpoint has a rank 4 lora", "its config.toml"),
    ("optimizer", {"name": "lion"}, "trained with the adamw optimizer and the settings ask for lion",
     '[optimizer] name = "adamw"'),
], ids=["targets", "dora", "rank", "optimizer"])
def test_refused_resume_leaves_the_run_untouched(finished_run, ledger, section, changes, expected, hint):
    cfg, checkpoint, _ = finished_run
    _refused_resume(cfg.with_section(section, **changes), checkpoint, checkpoint.parents[2], ledger, expected, hint)


def test_resume_of_an_old_checkpoint_with_another_optimizer(finished_run, tmp_path, ledger):
    """Checkpoints from before the optimizer's name was recorded: the state's own settings tell (no KeyError)."""
    cfg, checkpoint, _ = finished_run
    copy = tmp_path / "run" / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, copy)
    state = json.loads((copy / "state.json").read_text())
    state.pop("optimizer")
    (copy / "state.json").write_text(json.dumps(state))
    _refused_resume(cfg.with_section("optimizer", name="lion"), copy, tmp_path, ledger,
                    "the checkpoint was trained with another optimizer", "its config.toml")


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_resume_with_swapped_weights(finished_run, tiny_sd1, image_folder, tmp_path, ledger):
    """The adapter file of another run (rank 2) in this checkpoint: refused, nothing written."""
    cfg, checkpoint, _ = finished_run
    other = tiny_config(tiny_sd1, image_folder, tmp_path / "other", schedule={"max_steps": 1, "batch_size": 2},
                        network={"rank": 2, "alpha": 2.0})
    events = list(run_training(other))
    other_ckpt = [Path(e.path) for e in events if isinstance(e, Checkpoint)][-1]
    copy = tmp_path / "run" / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, copy)
    shutil.copy2(other_ckpt / "lora_unet.safetensors", copy / "lora_unet.safetensors")
    _refused_resume(cfg, copy, tmp_path / "run", ledger, "the checkpoint does not match the network")


@pytest.mark.parametrize("field, value", [("epoch", 10**30), ("index", 10**30), ("step", 10**30),
                                          ("epoch", 1e30), ("rank", 2**63), ("step", -1)])
def test_resume_state_with_huge_counts(finished_run, tmp_path, ledger, field, value):
    cfg, checkpoint, _ = finished_run
    copy = tmp_path / "run" / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, copy)
    state = json.loads((copy / "state.json").read_text())
    state[field] = value
    (copy / "state.json").write_text(json.dumps(state))
    _refused_resume(cfg, copy, tmp_path, ledger, "damaged checkpoint")


def test_an_exported_lora_given_to_resume(finished_run, tmp_path, ledger):
    cfg, _, export = finished_run
    copy = tmp_path / export.name
    shutil.copy2(export, copy)
    _refused_resume(cfg, copy, tmp_path, ledger, "is an exported LoRA file, not a training checkpoint",
                    "checkpoint-<step> folder")


# --------------------------------------------------------------------------------------------------
# mix: every number a finite one of sane size


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    from tests.faults.hostile_loras import good_modules

    path = tmp_path_factory.mktemp("mix-src") / "a.safetensors"
    save_file(good_modules(), str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def _mix_refused(capsys, tmp_path, ledger, spec: str, expected: str) -> None:
    out = tmp_path / "out" / "mixed.safetensors"
    before = snapshot(tmp_path)
    code, stdout, err = _cli(capsys, "mix", spec, "-o", str(out))
    unchanged = snapshot(tmp_path) == before
    ledger.record(FAULT_MIX, "lost" if not unchanged else "clear" if code == 2 and expected in err else "crash",
                  err)
    assert code == 2 and stdout == "", err
    assert expected in err and clear_message(err), err
    assert unchanged and not out.exists()


@pytest.mark.parametrize("label, value", HOSTILE_FLOATS, ids=[n for n, _ in HOSTILE_FLOATS])
@pytest.mark.parametrize("where", ["strength", "unet", "te", "blocks"])
def test_mix_refuses_hostile_strengths(capsys, tmp_path, lora_file, ledger, label, value, where):
    src = tmp_path / "a.safetensors"
    shutil.copy2(lora_file, src)
    text = f"{value!r}".replace("1e+30", "1e30")
    if where == "strength":
        spec, expected = f"{src}:{text}", f"a.safetensors: strength is {value:g}, expected a number between"
    elif where == "unet":
        spec, expected = f"{src}:unet={text}", f"a.safetensors: UNet strength (unet=) is {value:g}"
    elif where == "te":
        spec, expected = f"{src}:te={text}", f"a.safetensors: text-encoder strength (te=) is {value:g}"
    else:
        spec, expected = f"{src}:blocks={text}" + ",1" * 16, f"block weight BASE is {value:g}, expected a number"
    _mix_refused(capsys, tmp_path, ledger, spec, expected)


def test_mix_refuses_a_rank_out_of_range(capsys, tmp_path, lora_file, ledger):
    src = tmp_path / "a.safetensors"
    shutil.copy2(lora_file, src)
    for rank in ("0", "-3", "100000"):
        out = tmp_path / "out.safetensors"
        code, _, err = _cli(capsys, "mix", str(src), "--rank", rank, "-o", str(out))
        ledger.record(FAULT_MIX, "clear" if code == 2 and not out.exists() else "crash", err)
        assert code == 2 and f"--rank is {rank}, expected a whole number between 1 and 1024" in err
        assert not out.exists()


def test_mix_entries_from_the_window_are_checked_too():
    from studio.codec import from_data
    from studio.errors import ConfigError
    from studio.mix.request import MixEntry

    for value in (float("nan"), float("inf"), 1e30):
        with pytest.raises(ConfigError, match="strength is"):
            from_data({"path": "x.safetensors", "strength": value}, MixEntry)
        with pytest.raises(ConfigError, match="block weight IN04"):
            from_data({"path": "x.safetensors", "blocks": [["IN04", value]]}, MixEntry)


def test_a_bake_that_overflows_its_precision_is_refused(ledger):
    """Strengths within bounds can still overflow fp16 (65504) in a large layer: the bake names the layer and
    writes nothing (the check runs before the writers)."""
    import torch

    from studio.errors import ConfigError
    from studio.mix.bake import _check_finite
    from studio.mix.targets import Target

    layer = torch.nn.Linear(4, 4)
    with torch.no_grad():
        layer.weight[0, 0] = 1e6  # finite in fp32, infinite once written as fp16
    targets = {"lora_unet_mid_block_attentions_0_proj_in": Target(component="unet",
                                                                  path="mid_block.attentions.0.proj_in", module=layer)}
    _check_finite(targets, "fp32")  # fits fp32
    with pytest.raises(ConfigError, match="infinite or NaN weights in lora_unet_mid_block_attentions_0_proj_in "
                                          r"\(fp16\)"):
        _check_finite(targets, "fp16")
    with torch.no_grad():
        layer.weight[0, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"\(fp32\)"):
        _check_finite(targets, "fp32")
    ledger.record(FAULT_MIX, "clear")
