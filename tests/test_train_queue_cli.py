"""`lora-studio queue run` end to end: three tiny SD1.5 runs in a row, and a runner killed mid-queue (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.config import dumps_project
from studio.events import Progress, Started
from studio.run_folder import last_checkpoint, read_events
from studio.train_queue import TrainQueue
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), LORA_STUDIO_DATA_DIR=str(tmp_path / "data"),
               LORA_STUDIO_CONFIG_DIR=str(tmp_path / "config"))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _cli(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "studio.cli", *args]


def _queue_cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(_cli(tmp_path, *args), capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _projects(tmp_path: Path, model: Path, images: Path, steps: tuple[int, ...]) -> list[Path]:
    """One project folder per run, all exporting into one output folder under their own names."""
    paths = []
    for n, max_steps in enumerate(steps, 1):
        cfg = tiny_config(model, images, tmp_path / "out", schedule={"max_steps": max_steps, "batch_size": 1},
                          output={"name": f"run{n}", "save_every_n_steps": 2, "keep_checkpoints": 2})
        project = tmp_path / f"project{n}" / "project.toml"
        project.parent.mkdir()
        project.write_text(dumps_project(cfg), encoding="utf-8")
        paths.append(project)
    return paths


def _kohya_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return list(f.keys())


def _assert_export(path: Path, name: str) -> None:
    assert path == path.parent / f"{name}.safetensors" and path.is_file()
    keys = _kohya_keys(path)
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys), keys[:5]
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in keys), [k for k in keys if "lora_" not in k][:5]


def _listed(tmp_path: Path, queue_file: Path) -> list[dict]:
    return json.loads(_queue_cli(tmp_path, "queue", "list", "--json", "--queue", str(queue_file)).stdout)


def test_three_projects_run_to_completion_each_with_its_export(tmp_path, tiny_sd1, image_folder):
    queue_file = tmp_path / "queue.json"
    projects = _projects(tmp_path, tiny_sd1, image_folder, (4, 4, 4))
    added = _queue_cli(tmp_path, "queue", "add", *map(str, projects), "--queue", str(queue_file))
    assert added.stdout.splitlines() == [f"queued #{n} run{n}: {p.resolve()}" for n, p in enumerate(projects, 1)]

    done = _queue_cli(tmp_path, "queue", "run", "--quiet", "--queue", str(queue_file))
    exports = [tmp_path / "out" / f"run{n}.safetensors" for n in (1, 2, 3)]
    assert done.stdout.splitlines() == [f"done #{n} run{n}: {exports[n - 1]}" for n in (1, 2, 3)]
    for n, export in enumerate(exports, 1):
        _assert_export(export, f"run{n}")
    rows = _listed(tmp_path, queue_file)
    assert [(r["id"], r["state"], r["export"], r["resumable_step"]) for r in rows] == [
        (n, "done", str(exports[n - 1]), None) for n in (1, 2, 3)]
    for n, row in enumerate(rows, 1):
        assert Path(row["run_dir"]).parent == tmp_path / f"project{n}" / "runs"
        _assert_export(Path(row["run_dir"]) / f"run{n}-step0000002.safetensors", f"run{n}-step0000002")
        starts = [e for e in read_events(Path(row["run_dir"]) / "events.jsonl") if isinstance(e, Started)]
        assert [s.start_step for s in starts] == [0]

    again = _queue_cli(tmp_path, "queue", "run", "--quiet", "--queue", str(queue_file))
    assert again.stdout == ""  # nothing left to train


def _wait_for(what: str, condition, proc: subprocess.Popen, limit: float = 400.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"the queue runner ended (exit {proc.returncode}) before {what}"
        time.sleep(0.02)
    pytest.fail(f"no {what} within {limit:.0f} s")


def test_a_killed_runner_leaves_the_first_export_and_the_next_run_resumes_the_second(tmp_path, tiny_sd1,
                                                                                     image_folder):
    queue_file = tmp_path / "queue.json"
    # the second is long enough to be killed mid-run once its first checkpoint is on disk
    projects = _projects(tmp_path, tiny_sd1, image_folder, (4, 12, 4))
    _queue_cli(tmp_path, "queue", "add", *map(str, projects), "--queue", str(queue_file))
    queue = TrainQueue(queue_file)
    log = (tmp_path / "runner.log").open("wb")
    proc = subprocess.Popen(_cli(tmp_path, "queue", "run", "--quiet", "--queue", str(queue_file)), stdout=log,
                            stderr=subprocess.STDOUT, env=_env(tmp_path))
    try:
        first_export = Path(_wait_for("a first export", lambda: queue.get(1).export, proc))
        first_bytes = first_export.read_bytes()

        def second_checkpoint():
            run_dir = queue.get(2).run_dir
            return run_dir and last_checkpoint(Path(run_dir))

        _wait_for("a checkpoint of the second entry", second_checkpoint, proc)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode != 0

    assert first_export == tmp_path / "out" / "run1.safetensors"
    assert first_export.read_bytes() == first_bytes
    _assert_export(first_export, "run1")
    rows = _listed(tmp_path, queue_file)
    assert [r["state"] for r in rows] == ["done", "interrupted", "queued"]
    step = rows[1]["resumable_step"]
    assert isinstance(step, int) and 2 <= step < 12 and step % 2 == 0
    plain = _queue_cli(tmp_path, "queue", "list", "--queue", str(queue_file)).stdout.splitlines()
    assert plain[1].startswith(f"2. #2 run2 [interrupted, resumable from step {step}]")

    resumed = _queue_cli(tmp_path, "queue", "run", "--quiet", "--queue", str(queue_file))
    exports = [tmp_path / "out" / f"run{n}.safetensors" for n in (1, 2, 3)]
    assert resumed.stdout.splitlines() == [f"done #{n} run{n}: {exports[n - 1]}" for n in (2, 3)]
    assert f"#2 run2: resuming from step {step}" in resumed.stderr
    for n in (2, 3):
        _assert_export(exports[n - 1], f"run{n}")
    assert first_export.read_bytes() == first_bytes

    events = read_events(Path(rows[1]["run_dir"]) / "events.jsonl")
    starts = [i for i, e in enumerate(events) if isinstance(e, Started)]
    assert [events[i].start_step for i in starts] == [0, step]
    first_after = next(e for e in events[starts[1]:] if isinstance(e, Progress))
    assert first_after.step == step + 1
    assert max(e.step for e in events if isinstance(e, Progress)) == 12
    assert [r["state"] for r in _listed(tmp_path, queue_file)] == ["done", "done", "done"]
