"""The training queue file: entries added, listed, reordered and removed; strict reading; locks (fast, no torch)."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import pytest

import studio.fileio
from studio.config import ProjectConfig, dumps_project
from studio.errors import StudioError
from studio.train_queue import QueueError, TrainQueue, plan_entry


def _project(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "project.toml"
    path.write_text(dumps_project(ProjectConfig().with_section("output", name=name)), encoding="utf-8")
    return path


@pytest.fixture
def queue(tmp_path) -> TrainQueue:
    return TrainQueue(tmp_path / "queue.json")


@pytest.fixture
def three(tmp_path, queue) -> list[int]:
    projects = [_project(tmp_path / n, n) for n in ("alpha", "beta", "gamma")]
    return [e.id for e in queue.add(projects)]


def _ids(queue: TrainQueue) -> list[int]:
    return [e.id for e in queue.entries()]


def _fake_checkpoint(run_dir: Path, step: int, name: str) -> Path:
    """What the engine leaves in a run folder: its config.toml and a complete checkpoint (state.json last)."""
    point = run_dir / "checkpoints" / f"checkpoint-{step:07d}"
    point.mkdir(parents=True)
    (point / "state.json").write_text("{}", encoding="utf-8")
    (run_dir / "config.toml").write_text(dumps_project(ProjectConfig().with_section("output", name=name)),
                                         encoding="utf-8")
    return point


def test_an_absent_file_is_an_empty_queue_and_nothing_is_written_by_reading(queue):
    assert queue.entries() == []
    assert not queue.runner_active()
    assert list(queue.path.parent.iterdir()) == []  # not the queue file, nor a lock file beside it


def test_add_list_in_order_with_labels_from_the_projects(tmp_path, queue, three):
    assert three == [1, 2, 3]
    entries = queue.entries()
    assert [e.label for e in entries] == ["alpha", "beta", "gamma"]
    assert [e.state for e in entries] == ["queued"] * 3
    assert entries[0].project == str((tmp_path / "alpha" / "project.toml").resolve())
    assert entries[0].config_toml == ""  # read when its turn comes
    on_disk = json.loads(queue.path.read_text(encoding="utf-8"))
    assert on_disk["format"] == 1 and on_disk["next_id"] == 4
    assert [e["label"] for e in on_disk["entries"]] == ["alpha", "beta", "gamma"]


def test_snapshot_keeps_the_settings_as_they_were(tmp_path, queue):
    project = _project(tmp_path / "p", "before")
    entry, = queue.add([project], snapshot=True)
    project.write_text(dumps_project(ProjectConfig().with_section("output", name="after")), encoding="utf-8")
    assert 'name = "before"' in queue.get(entry.id).config_toml
    assert plan_entry(queue.get(entry.id)).config().output.name == "before"


def test_a_missing_or_invalid_project_is_refused_at_add_and_nothing_is_queued(tmp_path, queue, three):
    bad = tmp_path / "bad" / "project.toml"
    bad.parent.mkdir()
    bad.write_text("[network]\nrank = 'four'\n", encoding="utf-8")
    good = _project(tmp_path / "delta", "delta")
    with pytest.raises(StudioError):
        queue.add([good, bad])
    with pytest.raises(QueueError, match="not found"):
        queue.add([tmp_path / "nowhere.toml"])
    assert _ids(queue) == [1, 2, 3]


def test_remove_and_ids_are_never_reused(tmp_path, queue, three):
    assert queue.remove(2).label == "beta"
    assert _ids(queue) == [1, 3]
    entry, = queue.add([_project(tmp_path / "delta", "delta")])
    assert entry.id == 4
    with pytest.raises(QueueError, match=r"no queue entry 2 \(entries: 1, 3, 4\)") as info:
        queue.remove(2)
    assert "queue list" in info.value.hint


def test_move_reorders_and_past_the_end_means_last(queue, three):
    queue.move(3, 1)
    assert _ids(queue) == [3, 1, 2]
    queue.move(3, 99)
    assert _ids(queue) == [1, 2, 3]
    queue.move(1, 2)
    assert _ids(queue) == [2, 1, 3]
    with pytest.raises(QueueError, match="positions start at 1"):
        queue.move(1, 0)
    assert _ids(queue) == [2, 1, 3]


def test_clear_done_forgets_only_finished_entries(queue, three):
    queue.finish(1, outputs=["/out/a-step2.safetensors", "/out/a.safetensors"], stopped=False)
    queue.fail(2, "no images", "add a folder")
    assert queue.get(1).state == "done" and queue.get(1).export == "/out/a.safetensors"
    assert queue.clear_done() == 1
    assert _ids(queue) == [2, 3]
    assert queue.get(2).state == "failed" and queue.get(2).error == "no images"


def test_every_change_keeps_the_previous_version_as_bak(queue, three):
    before = queue.path.read_bytes()
    queue.remove(1)
    assert queue.backup_path.read_bytes() == before
    assert _ids(TrainQueue(queue.backup_path)) == [1, 2, 3]


@pytest.mark.parametrize("damage, words", [
    (b"\x00\x01 not json", "not JSON"),
    (b'{"format": 1, "next_id": 2}', "missing required field `entries`"),
    (b'{"format": 1, "next_id": 2, "entries": [{"id": 1, "project": "p", "state": "sleeping"}]}',
     "`queue.entries[0].state` is \"sleeping\", expected one of 'queued'"),
    (b'{"format": 1, "next_id": 2, "entries": [{"id": "1", "project": "p"}]}',
     "`queue.entries[0].id` is \"1\", expected an integer"),
    (b'{"format": 1, "next_id": 2, "entries": [{"id": 1, "project": "p", "colour": "red"}]}',
     "`queue.entries[0]` has no field(s) colour"),
    (b'{"format": 1, "next_id": 2, "entries": [{"id": 1, "project": "p"}, {"id": 1, "project": "q"}]}',
     "entry numbers repeat"),
    (b'{"format": 7, "next_id": 2, "entries": [], "new_thing": 1}', "newer LoRA Studio (format 7)"),
])
def test_a_damaged_file_is_a_message_and_neither_it_nor_the_bak_is_touched(tmp_path, queue, three, damage, words):
    queue.remove(3)  # now a .bak exists
    backup = queue.backup_path.read_bytes()
    queue.path.write_bytes(damage)
    for attempt in (queue.entries, lambda: queue.add([_project(tmp_path / "delta", "delta")]),
                    lambda: queue.remove(1), lambda: queue.move(1, 2), queue.clear_done):
        with pytest.raises(QueueError) as info:
            attempt()
        assert str(info.value).startswith(f"the training queue {queue.path} is damaged: ")
        assert words in str(info.value)
        assert str(queue.backup_path) in info.value.hint and "rename it to queue.json" in info.value.hint
    assert queue.path.read_bytes() == damage
    assert queue.backup_path.read_bytes() == backup


def test_a_damaged_file_without_bak_says_to_move_it_away(queue):
    queue.path.write_text("[]", encoding="utf-8")
    with pytest.raises(QueueError, match="damaged") as info:
        queue.entries()
    assert info.value.hint.startswith(f"move {queue.path} away")


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temp_file(monkeypatch, tmp_path, queue, three):
    before = queue.path.read_bytes()
    real_replace = studio.fileio.replace_file

    def disk_full_for_the_queue(src, dst):
        if Path(dst) == queue.path:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(studio.fileio, "replace_file", disk_full_for_the_queue)
    with pytest.raises(StudioError, match="the disk is full"):
        queue.remove(1)
    assert queue.path.read_bytes() == before
    assert _ids(queue) == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_the_runner_lock_keeps_a_second_runner_out_and_a_running_entry_in(queue, three):
    other = TrainQueue(queue.path)  # another process's view of the same file (flock: per open file)
    with queue.running():
        plan = queue.start_next()
        assert plan is not None and plan.entry_id == 1
        assert other.runner_active()
        with pytest.raises(QueueError, match="being run by another LoRA Studio process"):
            with other.running():
                pass
        with pytest.raises(QueueError, match="training now"):
            other.remove(1)
        assert other.get(1).shown_state(other.runner_active()) == "running"
    assert not other.runner_active()
    assert other.get(1).shown_state(other.runner_active()) == "interrupted"
    assert other.remove(1).id == 1  # its runner is gone: it can be taken off


def test_without_fcntl_or_msvcrt_the_queue_still_works_unguarded(monkeypatch, tmp_path, queue):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    with pytest.raises(ImportError):
        import fcntl  # noqa: F401
    entries = queue.add([_project(tmp_path / n, n) for n in ("alpha", "beta")])
    queue.move(entries[1].id, 1)
    assert [e.label for e in queue.entries()] == ["beta", "alpha"]
    other = TrainQueue(queue.path)
    with queue.running():
        assert queue.runner_active()  # this process knows it holds it
        assert not other.runner_active()  # no OS lock: another process cannot tell
        with other.running():  # and is not kept out (documented: a single-process queue)
            pass
        assert queue.start_next().entry_id == 2
    assert queue.get(2).state == "running"
    assert queue.path.with_name("queue.json.lock").exists()  # the lock file is made, just never locked


def test_start_next_marks_running_records_the_run_folder_and_skips_what_cannot_be_read(tmp_path, queue, three):
    Path(queue.get(1).project).write_text("[network]\nrank = 'x'\n", encoding="utf-8")
    with queue.running():
        plan = queue.start_next()
    assert plan.entry_id == 2 and plan.resume_from is None and plan.start_step == 0
    assert queue.get(1).state == "failed" and "rank" in queue.get(1).error
    second = queue.get(2)
    assert second.state == "running" and second.run_dir == plan.run_dir
    assert Path(plan.run_dir).parent == tmp_path / "beta" / "runs"
    assert plan.config().output.name == "beta"
    assert plan.request(17).request_id == 17 and plan.request(17).run_dir == plan.run_dir


def test_an_interrupted_entry_resumes_from_its_last_checkpoint_first(tmp_path, queue, three):
    with queue.running():
        plan = queue.start_next()
    run_dir = Path(plan.run_dir)
    _fake_checkpoint(run_dir, 2, "alpha")
    point = _fake_checkpoint(run_dir, 4, "alpha")
    (run_dir / "checkpoints" / "checkpoint-0000006").mkdir()  # cut off while saving: no state.json
    entry = queue.get(1)
    assert entry.describe(runner_active=False).startswith("#1 alpha [interrupted, resumable from step 4]")
    with queue.running():
        again = queue.start_next()
    assert (again.entry_id, again.start_step, again.resume_from) == (1, 4, str(point))
    assert again.run_dir == plan.run_dir


def test_requeue_a_failed_entry_keeps_its_run_so_it_resumes(tmp_path, queue, three):
    with queue.running():
        plan = queue.start_next()
    _fake_checkpoint(Path(plan.run_dir), 2, "alpha")
    queue.fail(1, "out of GPU memory")
    with pytest.raises(QueueError, match="already queued"):
        queue.requeue(2)
    entry = queue.requeue(1)
    assert entry.state == "queued" and entry.error == "" and entry.checkpoint()[0] == 2
    queue.finish(1, outputs=["/out/alpha.safetensors"], stopped=False)
    assert queue.get(1).checkpoint() is None  # done: nothing to resume
    assert queue.requeue(1).run_dir == ""  # a done entry queued again is a new run


def test_the_cli_edits_the_same_file_and_says_what_it_did(capsys, tmp_path, queue, three):
    from studio.cli import main

    q = ["--queue", str(queue.path)]
    assert main(["queue", "move", "3", "1", *q]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" [")[0] for line in out] == ["1. #3 gamma", "2. #1 alpha", "3. #2 beta"]
    assert main(["queue", "remove", "1", *q]) == 0
    assert capsys.readouterr().out == "removed #1 alpha\n"
    assert main(["queue", "list", "--json", *q]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"], r["resumable_step"], r["snapshot"]) for r in rows] == [
        (3, "queued", None, False), (2, "queued", None, False)]
    assert main(["queue", "retry", "3", *q]) == 2  # already queued
    assert capsys.readouterr().err == "error: queue entry 3 is already queued\n"


def test_the_cli_on_a_damaged_file_prints_the_message_and_hint_and_exits_2(capsys, queue, three):
    from studio.cli import main

    queue.remove(3)
    queue.path.write_text('{"format": 1}', encoding="utf-8")
    assert main(["queue", "list", "--queue", str(queue.path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: the training queue {queue.path} is damaged: `queue` is missing required field `next_id`"
    assert err[1].startswith(f"hint: the version before the last change is {queue.backup_path}")
    assert queue.path.read_text(encoding="utf-8") == '{"format": 1}'


class _FakeMsvcrt:
    """Windows' msvcrt.locking as far as the queue uses it: one byte locked per file, refusals as OSError."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.held: dict[str, int] = {}  # lock file name -> fd holding it

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        import os

        assert nbytes == 1
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        self.calls.append((name, mode))
        if mode == self.LK_UNLCK:
            del self.held[name]
        elif name in self.held:
            raise OSError(errno.EACCES, "locked")  # LK_LOCK would retry for 10 s first; the queue loops on it
        else:
            self.held[name] = fd


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the lock file's name from /proc")
def test_on_windows_msvcrt_locks_keep_a_second_runner_out(monkeypatch, queue, three):
    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    queue.move(3, 1)  # the edit lock: taken (waiting if need be) and given back
    assert fake.calls == [("queue.json.lock", fake.LK_LOCK), ("queue.json.lock", fake.LK_UNLCK)]
    other = TrainQueue(queue.path)
    with queue.running():
        assert fake.held.keys() == {"queue.json.run-lock"}
        assert other.runner_active()
        with pytest.raises(QueueError, match="being run by another"):
            with other.running():
                pass
        assert ("queue.json.run-lock", fake.LK_NBLCK) in fake.calls
    assert fake.held == {} and not other.runner_active()
