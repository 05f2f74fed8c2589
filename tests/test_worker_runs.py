"""Reading run folders for the history, cleaning after a killed worker, and the checks before a run (no Qt)."""

from __future__ import annotations

from pathlib import Path

from studio.config import ProjectConfig
from studio.events import Checkpoint, Failed, Finished, Progress, Sample, Started
from studio import run_folder as runs
from studio.config import loads_project
from studio.validate import check_files, validate
from tests.conftest import make_images


def _run(root: Path, name: str, events: list, checkpoints: tuple[int, ...] = ()) -> Path:
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text("[schedule]\nmax_steps = 10\n", encoding="utf-8")
    with open(run / "events.jsonl", "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(runs.event_line(e) + "\n")
    for step in checkpoints:
        ck = run / "checkpoints" / f"checkpoint-{step:07d}"
        ck.mkdir(parents=True)
        (ck / runs.CHECKPOINT_STATE).write_text("{}", encoding="utf-8")
    return run


def _progress(step: int, loss: float) -> Progress:
    return Progress(step=step, total=10, epoch=1, loss=loss, smoothed_loss=loss, lr=1e-4, it_per_s=1.0)


def test_runs_are_summarised_newest_first(tmp_path):
    lora = tmp_path / "out" / "a.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(b"x")
    done = _run(tmp_path, "20260101-000000-a", [Started(run_dir="r", total_steps=10), _progress(10, 0.1),
                                                 Finished(outputs=(str(lora), str(tmp_path / "gone.safetensors")),
                                                          step=10)], (10,))
    killed = _run(tmp_path, "20260102-000000-b", [Started(run_dir="r", total_steps=10), _progress(1, 0.5),
                                                   Checkpoint(path="c", step=2), _progress(3, 0.4)], (2,))
    with open(killed / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"type": "progress", "step": 4, "lo')  # the torn last line of a killed writer
    (killed / "checkpoints" / ".checkpoint-0000004.abc.tmp").mkdir()  # an unfinished save
    (killed / "checkpoints" / "checkpoint-0000004").mkdir()  # no state file: incomplete, not listed
    failed = _run(tmp_path, "20260103-000000-c", [Started(run_dir="r", total_steps=10),
                                                   Failed(error="out of GPU memory", hint="lower the batch")])
    found = runs.list_runs(tmp_path)
    assert [r.path for r in found] == [failed, killed, done]
    f, k, d = found
    assert (d.status, d.last_step, d.final_loss, d.outputs, d.resumable) == ("finished", 10, 0.1, (str(lora),), False)
    assert (k.status, k.last_step, k.checkpoint_step, k.resumable) == ("interrupted", 3, 2, True)
    assert k.last_checkpoint == killed / "checkpoints" / "checkpoint-0000002"
    assert (f.status, f.error, f.hint, f.resumable) == ("failed", "out of GPU memory", "lower the batch", False)
    assert "max_steps = 10" in d.config_text
    assert runs.list_runs(tmp_path / "nowhere") == []


def test_a_resumed_run_is_summarised_from_its_last_start(tmp_path):
    run = _run(tmp_path, "r", [Started(run_dir="r", total_steps=10), Failed(error="killed"),
                               Started(run_dir="r", total_steps=10, start_step=4), _progress(5, 0.3)], (4,))
    summary = runs.read_run(run)
    assert (summary.status, summary.error, summary.last_step) == ("interrupted", "", 5)


def test_clean_partial_files_removes_only_write_temporaries(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / ".checkpoint-0000004.x1.tmp").mkdir(parents=True)
    (run / "checkpoints" / ".checkpoint-0000004.x1.tmp" / "optimizer.pt").write_bytes(b"half")
    (run / ".lora-step0000004.safetensors.abc.safetensors.tmp").write_bytes(b"half")
    (run / "checkpoints" / ".checkpoint-0000002.old").mkdir()
    keep = [run / "lora-step0000002.safetensors", run / ".hidden-notes.txt", run / "events.jsonl"]
    out = tmp_path / "out"
    out.mkdir()
    keep += [out / ".other-app.tmp", out / "final.safetensors"]
    for path in keep:
        path.write_bytes(b"ok")
    (out / ".final.safetensors.q2.safetensors.tmp").write_bytes(b"half")
    (out / ".final.compat.json.k7.json.tmp").write_bytes(b"half")  # the LoRA's compatibility sidecar
    keep.append(out / "final.compat.json")
    keep[-1].write_bytes(b"ok")
    removed = runs.clean_partial_files(run, out)
    assert len(removed) == 5
    assert all(p.exists() for p in keep)
    assert sorted(p.name for p in run.rglob("*")) == sorted(["checkpoints", "lora-step0000002.safetensors",
                                                             ".hidden-notes.txt", "events.jsonl"])


def test_checkpoint_state_file_name_matches_the_engine():
    from studio.train.checkpoint import STATE_FILE

    assert runs.CHECKPOINT_STATE == STATE_FILE


def test_sample_images_lists_existing_previews(tmp_path):
    img = tmp_path / "s.png"
    img.write_bytes(b"png")
    run = _run(tmp_path, "r", [Sample(step=2, prompt="a", seed=1, path=str(img)),
                               Sample(step=4, prompt="a", seed=1, path=str(tmp_path / "deleted.png"))])
    assert runs.sample_images(run) == [(2, "a", str(img))]


def preflight(cfg, project):
    return validate(cfg) + check_files(cfg, project)


def test_validate_and_check_files_name_the_fields_to_fix(tmp_path):
    project = tmp_path / "project.toml"
    problems = preflight(ProjectConfig(), project)
    assert {(p.section, p.key) for p in problems if p.severity == "error"} == {("model", "path"),
                                                                                  ("dataset", "folders")}
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.ckpt").write_bytes(b"pickle")
    cfg = (ProjectConfig().with_section("model", path="model.ckpt").with_section("dataset", folders=("empty",),
                                                                                  resolution=100)
           .with_section("schedule", max_steps=10, warmup_steps=20).with_section("network", alpha=0.0)
           .with_section("sampling", every_n_steps=5, prompts=()).with_section("output", name="a/b"))
    found = {(p.section, p.key): p for p in preflight(cfg, project)}
    # a .ckpt is accepted as such (weights-only); this one is not a checkpoint at all, and says so
    assert "model.ckpt: cannot read it: not a valid checkpoint (damaged or not a PyTorch file)" in \
        found["model", "path"].message
    assert found["dataset", "folders"].message == f"no images found in {tmp_path / 'empty'}"
    assert "multiple of 8" in found["dataset", "resolution"].message
    assert "longer than the run" in found["schedule", "warmup_steps"].message
    assert found["sampling", "prompts"].severity == "warning"
    assert {("network", "alpha"), ("output", "name")} <= set(found)


def test_validate_and_check_files_pass_a_good_project(tmp_path, tiny_sd1):
    data = make_images(tmp_path / "data", n=2, size=(64, 64))
    cfg = (ProjectConfig().with_section("model", path=str(tiny_sd1))
           .with_section("dataset", folders=(str(data),), resolution=64))
    assert preflight(cfg, tmp_path / "project.toml") == []


def test_loads_project_reads_like_a_project_file():
    cfg = loads_project('preset = "sd15-style"\n[schedule]\nmax_steps = 7\n', "test")
    assert cfg.schedule.max_steps == 7 and cfg.schedule.lr_scheduler == "cosine"
