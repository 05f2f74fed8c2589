"""Resumable checkpoints that were torn, truncated, emptied or swapped: reading them back gives a clear
StudioError naming the checkpoint (never a raw library exception, which the app would report as a bug),
nothing is executed, and an undamaged checkpoint next to it still restores exactly.

The checkpoints are written by the real `save_checkpoint` from a real optimizer and scheduler.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from studio.errors import StudioError
from studio.run_folder import checkpoint_dir, last_checkpoint
from studio.train import checkpoint as ckpt

FAULT = "checkpoints: damaged on disk, then resumed"


def _training_state(seed: int = 0):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(8, 4)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    layer(torch.randn(2, 8)).sum().backward()
    opt.step()
    sched.step()
    gen = torch.Generator().manual_seed(seed)
    adapters = {"lora_unet": {"base_model.model.x.lora_A.weight": torch.randn(2, 8),
                              "base_model.model.x.lora_B.weight": torch.randn(4, 2)}}
    return layer, opt, sched, gen, adapters


def write_checkpoint(run_dir: Path, step: int = 3) -> Path:
    _, opt, sched, gen, adapters = _training_state()
    path = checkpoint_dir(run_dir, step)
    position = ckpt.LoopPosition(step=step, epoch=0, index=2, family="sd1", rank=2, train_text_encoder=False)
    ckpt.save_checkpoint(path, adapters=adapters, optimizer=opt, lr_scheduler=sched, noise_gen=gen,
                         position=position, keep=5)
    return path


def read_back(path: Path) -> None:
    """What the engine does with a checkpoint on resume, in the same order."""
    ckpt.read_position(path)
    ckpt.load_adapters(path)
    _, opt, sched, gen, _ = _training_state(seed=1)
    ckpt.restore_training_state(path, optimizer=opt, lr_scheduler=sched, noise_gen=gen)


def damages(path: Path, rng: random.Random, marker: Path) -> list[tuple[str, callable]]:
    out = []
    for f in sorted(p.name for p in path.iterdir()):
        size = (path / f).stat().st_size

        def truncate(f=f, n=None):
            blob = (path / f).read_bytes()
            (path / f).write_bytes(blob[:n])

        for n in sorted({0, 1, size // 3, size // 2, size - 1}):
            out.append((f"{f}-truncated-to-{n}", lambda f=f, n=n: truncate(f, n)))
        out.append((f"{f}-deleted", lambda f=f: (path / f).unlink()))
        out.append((f"{f}-random-bytes", lambda f=f: (path / f).write_bytes(rng.randbytes(size))))
        out.append((f"{f}-flipped-middle", lambda f=f: _flip(path / f, rng)))
        if f.endswith(".pt"):
            out.append((f"{f}-malicious", lambda f=f: torch.save(
                {"state": {}, "x": _Evil(marker)}, path / f)))
            out.append((f"{f}-wrong-structure", lambda f=f: torch.save({"nothing": torch.ones(1)}, path / f)))
            out.append((f"{f}-a-list", lambda f=f: torch.save([1, 2, 3], path / f)))
    for text in ("", "{", "[]", "null", '{"step": "x"}', '{"step": 3}', json.dumps({
            "step": "3", "epoch": 0, "index": 0, "family": "sd1", "rank": 2, "train_text_encoder": False}),
            json.dumps({"step": -1, "epoch": 0, "index": 0, "family": "sd1", "rank": 2, "train_text_encoder": False}),
            json.dumps({"step": 3, "epoch": 0, "index": 0, "family": "sd1", "rank": 2, "train_text_encoder": False,
                        "extra": 1})):
        out.append((f"state.json={text[:20]!r}", lambda text=text: (path / ckpt.STATE_FILE).write_text(text)))
    out.append(("adapter-files-all-gone", lambda: [f.unlink() for f in path.glob("*.safetensors")]))
    return out


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _flip(path: Path, rng: random.Random) -> None:
    blob = bytearray(path.read_bytes())
    for _ in range(8):
        i = rng.randrange(len(blob))
        blob[i] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_damaged_checkpoints_give_clear_errors(ledger, tmp_path, marker):
    pristine = write_checkpoint(tmp_path / "pristine")
    read_back(pristine)  # the undamaged one restores
    names = [name for name, _ in damages(pristine, random.Random(0), marker)]
    assert len(names) >= 50
    broken = []
    for i, name in enumerate(names):
        path = checkpoint_dir(tmp_path / f"run{i}", 3)
        shutil.copytree(pristine, path)
        dict(damages(path, random.Random(i), marker))[name]()
        problem = ""
        try:
            read_back(path)
            outcome = "ok"  # e.g. a flip inside padding, or a truncation that kept a valid file
        except StudioError as exc:
            outcome = "error"
            if path.name not in str(exc):
                problem = f"message does not name the checkpoint: {exc}"
        except BaseException as exc:  # noqa: BLE001
            outcome = "crash"
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        if marker.exists():
            problem += " CODE RAN"
            marker.unlink()
        if outcome == "ok" and any(k in name for k in ("deleted", "malicious", "truncated-to-0", "gone", "state.json")):
            problem += " a damaged checkpoint was accepted"
        ledger.record(FAULT, "crash" if problem else "clear", f"{name}: {problem}")
        if problem:
            broken.append(f"{name}: {problem}")
    read_back(pristine)
    assert not broken, f"{len(broken)} of {len(names)}:\n" + "\n".join(broken)


@pytest.mark.parametrize("keep", [1, 2])
def test_a_kill_between_save_and_prune_keeps_a_complete_checkpoint(tmp_path, keep):
    """Pruning runs after the new checkpoint is in place: at every moment one complete checkpoint exists."""
    run = tmp_path / "run"
    for step in (1, 2, 3):
        write_checkpoint(run, step)
        ckpt.prune_checkpoints(run / "checkpoints", keep)
        latest = (last_checkpoint(run) or (0, None))[1]
        assert latest is not None and latest.name.endswith(f"{step:07d}")
        read_back(latest)
    assert len(list((run / "checkpoints").glob("checkpoint-*"))) == keep


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_resume_from_damaged_checkpoints_is_a_clear_failure(ledger, tiny_sd1, image_folder, tmp_path, marker):
    """The same through the engine: resume ends in a Failed event that says what is wrong, never 'a bug'."""
    from studio.events import Checkpoint, Failed
    from studio.train.engine import run_training
    from tests.conftest import tiny_config
    from tests.faults.test_hostile_pickles import _Reduce

    cfg = tiny_config(tiny_sd1, image_folder, tmp_path / "out", schedule={"max_steps": 1, "batch_size": 2},
                      network={"rank": 4})
    source = [Path(e.path) for e in run_training(cfg) if isinstance(e, Checkpoint)][-1]
    damage = {
        "adapter renamed": lambda p: os.replace(p / "lora_unet.safetensors", p / "other.safetensors"),
        "adapter of another rank": lambda p: __import__("safetensors.torch").torch.save_file(
            {k: torch.zeros(v.shape[0] * 2, *v.shape[1:]) for k, v in ckpt.load_adapters(p)["lora_unet"].items()},
            str(p / "lora_unet.safetensors")),
        "optimizer.pt malicious": lambda p: torch.save({"x": _Reduce(os.system, f"touch {marker}")}, p / "optimizer.pt"),
        "scheduler.pt truncated": lambda p: (p / "scheduler.pt").write_bytes((p / "scheduler.pt").read_bytes()[:40]),
        "rng.pt wrong structure": lambda p: torch.save({"a": torch.ones(1)}, p / "rng.pt"),
        "state.json garbage": lambda p: (p / ckpt.STATE_FILE).write_text("{"),
    }
    problems = []
    for i, (name, hurt) in enumerate(damage.items()):
        copy = checkpoint_dir(tmp_path / f"copy{i}", 1)
        shutil.copytree(source, copy)
        hurt(copy)
        last = list(run_training(cfg, resume_from=copy))[-1]
        problem = ""
        if not isinstance(last, Failed):
            problem = f"did not fail: {last}"
        elif "bug in LoRA Studio" in last.hint or "checkpoint" not in last.error:
            problem = f"unclear: {last.error} / {last.hint}"
        if marker.exists():
            problem += " CODE RAN"
        ledger.record(FAULT, "crash" if problem else "clear", f"{name}: {problem}")
        if problem:
            problems.append(f"{name}: {problem}")
    assert not problems, "\n".join(problems)
