"""SIGKILL at chosen and at random points of a real training run: during a step, at every stage of a checkpoint
write, during an export, during the pruning of old checkpoints. Then the promises:

- every checkpoint folder that looks complete (has its state file) loads completely;
- every exported `.safetensors` opens with `safetensors.safe_open` and reads with our LoRA reader;
- the temporaries the kill left are only hidden `.*.tmp`/`.*.old` names, and `clean_partial_files` removes them;
- resuming from the newest checkpoint finishes the run and writes a loadable final export.

The runs are forked from a forkserver that has imported the engine once (see `kill_child.py`); one more case
kills the real worker process (`python -m studio.worker`) through the client and resumes in a new worker.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_config
from tests.faults.kill_child import KillAt, read_events, run

FAULT = "worker killed (SIGKILL) mid-run"
STEPS = 40  # never reached by the chain: the last kill point and the final resume end the run earlier

# Kill points, in the order one chain of runs meets them: each run resumes from the newest checkpoint the
# previous (killed) run left and is itself killed at the next point; `nth` counts within that run. A KillAt
# fires inside the child; an int means the parent kills at a random moment after that many more steps.
# delay_ms=-1: a random delay after the event, so the kill lands inside the write that follows.
CHAIN: list[tuple[str, KillAt | int]] = [
    ("during-a-step", 2),
    ("checkpoint-folder-created", KillAt("os.mkdir", ".checkpoint-", nth=1)),
    ("checkpoint-mid-write", KillAt("os.mkdir", ".checkpoint-", nth=1, delay_ms=-1)),
    ("checkpoint-state-file", KillAt("open", "state.json", nth=1)),
    ("checkpoint-rename", KillAt("os.rename", ".checkpoint-", nth=1)),
    ("export-temp-created", KillAt("open", ".test-lora-step", nth=1)),
    ("export-mid-write", KillAt("open", ".test-lora-step", nth=1, delay_ms=-1)),
    ("export-rename", KillAt("os.rename", ".test-lora-step", nth=1)),
    ("checkpoint-prune", KillAt("shutil.rmtree", "checkpoint-", nth=1)),
    ("checkpoint-prune-mid", KillAt("shutil.rmtree", "checkpoint-", nth=2, delay_ms=-1)),
    ("during-a-later-step", 1),
    ("final-export-rename", KillAt("os.rename", ".test-lora.safetensors", nth=1)),
]


@pytest.fixture(scope="module")
def forkserver():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["studio.train.engine", "tests.faults.kill_child", "tests.faults.kill_warm"])
    return ctx


def _cfg(model: Path, data: Path, out: Path):
    return tiny_config(model, data, out, schedule={"max_steps": STEPS, "batch_size": 2},
                       network={"rank": 4, "alpha": 4.0},
                       output={"save_every_n_steps": 1, "keep_checkpoints": 2, "directory": str(out)})


@pytest.fixture(scope="module")
def small_images(tmp_path_factory) -> Path:
    from tests.conftest import make_images

    return make_images(tmp_path_factory.mktemp("kill-data") / "images", n=4, size=(64, 64))


def _run_child(ctx, cfg, events: Path, kill: KillAt | None, resume_from: str | None = None,
               kill_after_step: int | None = None, rng: random.Random | None = None) -> int | None:
    proc = ctx.Process(target=run, args=(cfg, str(events), kill, resume_from))
    proc.start()
    if kill_after_step is not None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.is_alive():
            if sum(e.get("type") == "progress" for e in read_events(events)) >= kill_after_step:
                time.sleep((rng or random.Random(0)).uniform(0.0, 0.4))
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    proc.join(240)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        return None
    return proc.exitcode


def check_outputs(run_dir: Path, out_dir: Path) -> list[str]:
    """Every complete checkpoint and every export loads; returns the problems found."""
    from safetensors import safe_open

    from studio.formats.reader import read_lora
    from studio.train import checkpoint as ckpt

    problems = []
    for folder in sorted((run_dir / "checkpoints").glob("checkpoint-*")):
        if not (folder / ckpt.STATE_FILE).is_file():
            continue  # not complete: ignored by resume and by the history (an interrupted prune)
        try:
            ckpt.read_position(folder)
            for f in folder.glob("*.safetensors"):
                with safe_open(str(f), "pt") as fh:
                    for key in fh.keys():
                        fh.get_tensor(key)
            for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
                torch.load(folder / name, weights_only=True)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"checkpoint {folder.name} looks complete but does not load: {type(exc).__name__}: "
                            f"{str(exc)[:150]}")
    for f in [*run_dir.glob("*.safetensors"), *out_dir.glob("*.safetensors")]:
        if f.name.startswith("."):
            continue
        try:
            with safe_open(str(f), "pt") as fh:
                assert list(fh.keys())
            read_lora(f)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"export {f.name} does not load: {type(exc).__name__}: {str(exc)[:150]}")
    return problems


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_sigkill_at_every_stage_then_resume(ledger, forkserver, tiny_sd1, small_images, tmp_path):
    """One chain: kill, check, resume (and kill again at the next point), …, then a last resume that finishes."""
    from studio.train import checkpoint as ckpt
    from studio.run_folder import clean_partial_files

    out = tmp_path / "out"
    cfg = _cfg(tiny_sd1, small_images, out)
    rng = random.Random(20261123)
    broken: list[str] = []
    latest: Path | None = None
    for i, (case_id, where) in enumerate(CHAIN):
        if isinstance(where, KillAt) and where.delay_ms < 0:
            where = KillAt(where.event, where.match, where.nth, delay_ms=rng.uniform(0.5, 25.0))
        before_step = ckpt.read_position(latest).step if latest is not None else 0
        events = tmp_path / f"events-{i}.jsonl"
        if case_id == "final-export-rename":  # the final export comes at max_steps: end the run two steps on
            cfg = cfg.with_section("schedule", max_steps=before_step + 2)
        code = _run_child(forkserver, cfg, events, where if isinstance(where, KillAt) else None,
                          resume_from=str(latest) if latest else None,
                          kill_after_step=where if isinstance(where, int) else None, rng=rng)
        seen = read_events(events)
        problems = []
        if code != -signal.SIGKILL:
            problems.append(f"the kill point was never reached (exit {code}); last events {seen[-2:]}")
        run_dir = next((out / "runs").iterdir())
        problems += check_outputs(run_dir, out)
        left = clean_partial_files(run_dir, out)
        stray = [p for p in [*run_dir.rglob(".*"), *out.glob(".*")] if p.name.endswith((".tmp", ".old"))]
        if stray:
            problems.append(f"temporaries survive clean_partial_files: {stray}")
        if any(not p.name.startswith(".") for p in left):
            problems.append(f"clean_partial_files removed visible files: {left}")
        if seen and seen[0].get("type") == "started" and seen[0].get("start_step") != before_step:
            problems.append(f"resumed at step {seen[0].get('start_step')}, the checkpoint was {before_step}")
        latest = ckpt.latest_checkpoint(run_dir)
        if (ckpt.read_position(latest).step if latest is not None else 0) < before_step:
            problems.append(f"the newest complete checkpoint went backwards from step {before_step} to {latest}")
        kind = "lost" if any("does not load" in p or "backwards" in p for p in problems) else \
            "crash" if problems else "recovered"
        ledger.record(FAULT, kind, f"{case_id}: {problems}")
        broken += [f"{case_id}: {p}" for p in problems]
    # the last resume finishes the run
    events = tmp_path / "events-final.jsonl"
    code = _run_child(forkserver, cfg, events, None, resume_from=str(latest) if latest else None)
    final = read_events(events)
    run_dir = next((out / "runs").iterdir())
    ok = code == 0 and final and final[-1].get("type") == "finished" and final[-1].get("step") == cfg.schedule.max_steps
    if not ok:
        broken.append(f"the final resume did not finish (exit {code}): {final[-2:]}")
    broken += check_outputs(run_dir, out)
    if not (out / "test-lora.safetensors").is_file():
        broken.append("no final export after the last resume")
    ledger.record(FAULT, "recovered" if ok else "crash", "final resume")
    assert not broken, "\n".join(broken)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_sigkill_of_the_real_worker_then_resume_in_a_new_one(ledger, tiny_sd1, small_images, tmp_path):
    """The same through the worker process and its client: kill it mid-run, resume in a fresh worker."""
    from studio.config import dumps_project
    from studio.events import Checkpoint, Failed, Finished, Progress
    from studio.job_requests import TrainRequest
    from studio.train import checkpoint as ckpt
    from studio.worker import protocol as p
    from studio.worker.client import WorkerExited, WorkerProcess

    out = tmp_path / "out"
    cfg = _cfg(tiny_sd1, small_images, out).with_section("schedule", max_steps=40)
    worker = WorkerProcess()
    worker.start()
    try:
        worker.wait_for(p.Ready, timeout=120)
        worker.send(TrainRequest(config_toml=dumps_project(cfg)))
        worker.wait_for(lambda m: isinstance(m, Checkpoint) and m.step >= 2, timeout=240)
        worker.wait_for(Progress, timeout=60)
        time.sleep(random.Random(1).uniform(0.0, 0.3))
        os.kill(worker.pid, signal.SIGKILL)
        exited = worker.wait_for(WorkerExited, timeout=30)
        assert exited.returncode == -signal.SIGKILL and "killed by SIGKILL" in exited.describe()
    finally:
        worker.kill()
    run_dir = next((out / "runs").iterdir())
    problems = check_outputs(run_dir, out)
    latest = ckpt.latest_checkpoint(run_dir)
    assert latest is not None
    step = ckpt.read_position(latest).step

    cfg = cfg.with_section("schedule", max_steps=step + 2)
    worker = WorkerProcess()
    worker.start()
    try:
        worker.wait_for(p.Ready, timeout=120)
        worker.send(TrainRequest(config_toml=dumps_project(cfg), resume_from=str(latest)))
        end = worker.wait_for((Finished, Failed), timeout=240)
        assert isinstance(end, Finished), end
        assert end.step == step + 2
        worker.shutdown(timeout=30)
    finally:
        worker.kill()
    problems += check_outputs(run_dir, out)
    ledger.record(FAULT, "lost" if problems else "recovered", str(problems))
    assert not problems, "\n".join(problems)
