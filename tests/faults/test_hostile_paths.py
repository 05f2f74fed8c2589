"""Every file we read, pointed at something that is not a plain readable file: a FIFO, a device, a huge sparse
file, a folder, a symlink loop, a dangling symlink — in a child process (`tests/faults/path_runner.py`), so a
hang or an endless read fails one named case instead of stopping the suite.

Readers: the project file (twice: `load_project` and the window's `open_project`), a base model path, its
`model_index.json`, `unet/config.json` and weights file, a resume checkpoint and its `state.json`, a LoRA file,
`dataset.json`, `folder.toml`, an image in check-dataset, the check cache, a latent-cache entry, `demo --out`,
`train --out`, a run folder's `config.toml` and `events.jsonl` (the run list) and the event log a resume appends to. Each must end in one of our StudioErrors (with a message in our words) or, for the caches
and the image check, be handled quietly (a miss; an excluded image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.hostile_inputs import clear_message

ROOT = Path(__file__).resolve().parents[2]
FAULT = "paths: FIFO, device, huge, folder, symlink loop/dangling, per reader"
TIMEOUT_S = 240  # the child builds one tiny model, then ~90 cases of milliseconds each; a hang is minutes


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and symlinks need POSIX")
def test_every_reader_refuses_what_is_not_a_file(tmp_path, ledger):
    results = tmp_path / "results.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.faults.path_runner", str(results)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        returncode = proc.returncode
        tail = proc.stderr[-2000:]
    except subprocess.TimeoutExpired:
        returncode, tail = None, "timed out"
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()] if results.exists() else []
    begun = [d["begin"] for d in lines if "begin" in d]
    done = {d["case"]: d for d in lines if "case" in d}
    hung = [c for c in begun if c not in done]
    for case in hung:
        ledger.record(FAULT, "crash", f"{case}: hung or killed the child ({tail})")
    assert returncode == 0 and not hung, f"the child stopped in {hung or 'set-up'}: {tail}"
    assert len(done) >= 95, sorted(done)  # six kinds × the readers, less the few a kind does not apply to

    wrong = []
    for case, d in sorted(done.items()):
        outcome, expect = d["outcome"], d["expect"]
        message = outcome.split(":", 2)[2] if outcome.startswith("error:") else ""
        good = (outcome == "ok" if expect == "ok" else
                outcome.startswith("error:") and clear_message(message) if expect == "error" else
                outcome == "ok" or outcome.startswith("error:") and clear_message(message))
        ledger.record(FAULT, "clear" if good else "crash", f"{case}: {outcome}")
        if not good:
            wrong.append(f"{case}: expected {expect}, got {outcome}")
    assert wrong == []


def test_the_messages_say_what_the_path_is(tmp_path):
    """Spot checks of the wording (the child only checks that an error is ours)."""
    from studio.config import load_project
    from studio.errors import StudioError
    from studio.formats.reader import read_lora
    from studio.models.load import load_components
    from studio.train.checkpoint import read_position
    from tests.faults.hostile_inputs import make_hostile

    if not make_hostile("fifo", tmp_path / "p.toml"):
        pytest.skip("no FIFOs here")
    make_hostile("symlink loop", tmp_path / "loop.safetensors")
    make_hostile("folder", tmp_path / "dir.safetensors")
    cases = [
        (lambda: load_project(tmp_path / "p.toml"), f"project file {tmp_path / 'p.toml'} is a named pipe (FIFO), "
                                                    "not a file"),
        (lambda: load_components(Path("/dev/zero")), "base model /dev/zero is a device, not a model file or folder"),
        (lambda: load_components(tmp_path / "p.toml"), "is a named pipe (FIFO), not a model file or folder"),
        (lambda: read_lora(tmp_path / "loop.safetensors"), "is a symbolic link that loops back on itself"),
        (lambda: read_lora(tmp_path / "dir.safetensors"), f"LoRA file {tmp_path / 'dir.safetensors'} is a folder, "
                                                          "not a file"),
        (lambda: read_position(tmp_path / "p.toml"), "is a named pipe (FIFO), not a folder"),
    ]
    for fn, expected in cases:
        with pytest.raises(StudioError) as info:
            fn()
        assert expected in str(info.value) and "huggingface" not in str(info.value) and info.value.hint


def test_a_huge_event_log_is_read_in_bounded_memory(tmp_path, monkeypatch):
    """Only the start and the end of an oversized log are read: Started and the newest events survive."""
    from studio import run_folder as runs

    monkeypatch.setattr(runs, "MAX_EVENT_LOG_BYTES", 4096)
    log = tmp_path / "events.jsonl"
    from studio.events import Progress, Started

    first = Started(run_dir="r", total_steps=10_000, time=1.0)
    lines = [runs.event_line(first)]
    lines += [runs.event_line(Progress(step=i, total=10_000, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                                       it_per_s=1.0, time=1.0)) for i in range(1, 2001)]
    log.write_text("\n".join(lines) + "\n")
    assert log.stat().st_size > 10 * 4096
    events = runs.read_events(log)
    assert events[0] == first
    assert isinstance(events[-1], Progress) and events[-1].step == 2000
    assert sum(len(runs.event_line(e)) + 1 for e in events) <= 4096  # no more than the cap was kept
