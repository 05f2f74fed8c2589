"""Several processes, one run: `accelerate launch` with 2 CPU processes (gloo) trains and saves once.

accelerate 1.x starts several CPU processes only through its multi-process launcher (`--multi_gpu`, which
falls back to gloo on a machine without GPUs); `--cpu` with several processes needs MPI. On a machine
with N GPUs, `accelerate launch --num_processes N -m studio.cli train PROJECT.toml` is the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from tests.conftest import make_images

pytestmark = pytest.mark.slow


def test_two_process_accelerate_run_trains_and_saves_once(tiny_sd1, tmp_path):
    make_images(tmp_path / "data", n=6)
    (tmp_path / "project.toml").write_text(f"""
[dataset]
folders = ["data"]
resolution = 64
[model]
path = "{tiny_sd1}"
[schedule]
max_steps = 4
batch_size = 1
[output]
directory = "out"
name = "two"
save_every_n_steps = 2
""")
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "studio.cli", "train",
                           "project.toml", "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out" / "two.safetensors"
    # both processes finish with the same export; they share one pipe, so their lines may run together
    # ("PATHPATH\n\n"): each path is one short write, so count whole paths and check nothing else was printed
    assert proc.stdout.count(str(out.resolve())) == 2, proc.stdout
    assert not proc.stdout.replace(str(out.resolve()), "").strip(), proc.stdout
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # one run folder, named by the main process
    events = [json.loads(line) for line in (runs[0] / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("finished") == 1 and "failed" not in kinds
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3, 4]  # logged once, by rank 0
    assert any(e["type"] == "log" and "× 2 processes" in e["text"] for e in events)
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [2, 4]
    assert sorted(p.name for p in (runs[0] / "checkpoints").iterdir()) == ["checkpoint-0000002", "checkpoint-0000004"]
    assert len(list(runs[0].glob("*.safetensors"))) == 1 and out.is_file()
    assert len(list(runs[0].glob("events.out.tfevents.*"))) == 1
    with safe_open(str(out), "pt") as fh:
        meta = fh.metadata()
        ups = [fh.get_tensor(k) for k in fh.keys() if k.endswith("lora_up.weight")]
    assert meta["ss_epoch"] == "2"  # 4 steps × 2 processes × batch 1 = 8 of 6 images: each step saw both shards
    assert any(u.abs().sum() > 0 for u in ups)
