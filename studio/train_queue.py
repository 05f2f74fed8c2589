"""The training queue: projects (or snapshots of their settings) trained one after another, unattended.

One small JSON file (default `<user data>/queue.json`; the CLI's `--queue FILE` picks another), so that
`lora-studio queue add`, `lora-studio queue run` and the window all see the same entries. An entry records its
run folder as soon as it starts, so one that was training when its process died is *interrupted* and resumes
from its last checkpoint instead of starting over. Two OS file locks keep processes apart: a short one around
every read-change-write (an `add` during a run is never lost), and one held while a queue runs (two runners
never train the same entry; the OS drops it when a runner is killed). Writes are atomic, the previous version
is kept as `queue.json.bak`, and a damaged file is refused with a message, never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

from studio.codec import CodecError, from_data, to_data
from studio.config import ProjectConfig, loads_project, resolve_path
from studio.errors import StudioError
from studio.fileio import atomic_write_bytes
from studio.job_requests import TrainRequest
from studio.paths import data_dir
from studio.run_folder import last_checkpoint, new_run_dir
from studio.safe_read import read_capped
from studio.textfile import NotUtf8Error, decode_text

QueueState = Literal["queued", "running", "done", "failed", "stopped"]
QUEUE_FORMAT = 1
QUEUE_FILE_LIMIT = 16 * 2**20  # a queue of hundreds of snapshots is well under this
QUEUE_FILE_NAME = "queue.json"


class QueueError(StudioError):
    """The queue file cannot be read or the change asked for cannot be made."""


@dataclass(frozen=True)
class QueueEntry:
    """One run to make. `config_toml` empty: the project file is read when the entry starts (edits made while it
    waits count); otherwise it is the settings as they were when it was queued."""

    id: int
    project: str
    label: str = ""
    config_toml: str = ""
    state: QueueState = "queued"
    run_dir: str = ""
    export: str = ""
    error: str = ""
    hint: str = ""

    def checkpoint(self) -> tuple[int, Path] | None:
        """(step, folder) of the last complete checkpoint of its run, if it has one and did not finish."""
        if not self.run_dir or self.state == "done":
            return None
        return last_checkpoint(Path(self.run_dir))

    def shown_state(self, runner_active: bool) -> str:
        """What to call its state: "running" with nobody running the queue means its process died."""
        return "interrupted" if self.state == "running" and not runner_active else self.state

    def describe(self, runner_active: bool) -> str:
        """A one-line summary for the CLI's `queue list` and the window's tooltip."""
        state = self.shown_state(runner_active)
        point = self.checkpoint()
        if state in ("interrupted", "failed", "stopped") and point:
            state += f", resumable from step {point[0]}"
        text = f"#{self.id} {self.label or Path(self.project).parent.name} [{state}] {self.project}"
        if self.export:
            text += f" → {self.export}"
        if self.error and self.state != "done":
            text += f" ({self.error})"
        return text


@dataclass(frozen=True)
class TrainPlan:
    """What one entry trains: the settings, where its run folder is, and the checkpoint to resume from."""

    entry_id: int
    config_toml: str
    project_file: str
    run_dir: str
    resume_from: str | None = None
    start_step: int = 0

    def config(self) -> ProjectConfig:
        return loads_project(self.config_toml, f"queue entry {self.entry_id} ({self.project_file})")

    def request(self, request_id: int) -> TrainRequest:
        """The same run as a worker job (the window's queue)."""
        return TrainRequest(request_id=request_id, config_toml=self.config_toml, project_file=self.project_file,
                            resume_from=self.resume_from, run_dir=self.run_dir)


class _FileLock:
    """An exclusive OS lock on a small file, dropped by the OS when its holder exits or is killed:
    `fcntl.flock` on macOS and Linux, `msvcrt.locking` on Windows; elsewhere it never blocks (unguarded)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def acquire(self, *, blocking: bool) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")
        try:
            _lock(fh, blocking)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fcntl, msvcrt = _lock_modules()
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
                elif msvcrt is not None:
                    self._fh.seek(0)
                    msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
            self._fh.close()
            self._fh = None


def _lock_modules() -> tuple[object | None, object | None]:
    """(fcntl, msvcrt), each None where this OS lacks it."""
    found = []
    for name in ("fcntl", "msvcrt"):
        try:
            found.append(__import__(name))
        except ImportError:
            found.append(None)
    return found[0], found[1]


def _lock(fh: IO[bytes], blocking: bool) -> None:
    fcntl, msvcrt = _lock_modules()
    if fcntl is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    elif msvcrt is not None:
        fh.seek(0)
        while True:  # LK_LOCK gives up after ten seconds; an edit waits for as long as the other one takes
            try:
                msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if not blocking:
                    raise


@dataclass
class _Contents:
    format: int
    next_id: int
    entries: list[QueueEntry]

    def __post_init__(self) -> None:
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids) or any(i >= self.next_id for i in ids):
            raise QueueError("entry numbers repeat or run past next_id")


class TrainQueue:
    """The queue file at `path`: every method reads it afresh, so other processes' changes are seen."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else data_dir() / QUEUE_FILE_NAME
        self._runner = _FileLock(self.path.with_name(self.path.name + ".run-lock"))

    # reading ------------------------------------------------------------------------------------------
    def entries(self) -> list[QueueEntry]:
        return self._read().entries

    def get(self, entry_id: int) -> QueueEntry:
        return self._find(self._read().entries, entry_id)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    def runner_active(self) -> bool:
        """True while some process (this one included) is running the queue."""
        if self._runner._fh is not None:
            return True
        if not self._runner.path.exists():  # no queue was ever run here; and probing must not create the file
            return False
        probe = _FileLock(self._runner.path)
        free = probe.acquire(blocking=False)
        probe.release()
        return not free

    # changing -----------------------------------------------------------------------------------------
    def add(self, projects: Sequence[str | Path], *, snapshot: bool = False) -> list[QueueEntry]:
        """Queue each project file at the end; `snapshot` freezes its settings now. Each file is read first, so
        a missing or invalid one is refused here, not at 3 a.m. when its turn comes."""
        prepared = []
        for project in projects:
            path = Path(project).expanduser().resolve()
            text = read_project_text(path)
            cfg = loads_project(text, str(path))
            prepared.append((str(path), cfg.output.name, text if snapshot else ""))
        return [self.add_config(p, toml, label=label) for p, label, toml in prepared]

    def add_config(self, project: str | Path, config_toml: str, *, label: str = "") -> QueueEntry:
        """Queue settings as they are now (the window's form, unsaved edits included) for `project`."""
        if config_toml:
            label = label or loads_project(config_toml, str(project)).output.name
        with self._editing() as contents:
            entry = QueueEntry(id=contents.next_id, project=str(project), label=label, config_toml=config_toml)
            contents.next_id += 1
            contents.entries.append(entry)
        return entry

    def remove(self, entry_id: int) -> QueueEntry:
        active = self.runner_active()
        with self._editing() as contents:
            entry = self._find(contents.entries, entry_id)
            if entry.state == "running" and active:
                raise QueueError(f"queue entry {entry_id} is training now",
                                 hint="stop the queue first (Ctrl+C in `lora-studio queue run`, or Stop in the window)")
            contents.entries.remove(entry)
        return entry

    def move(self, entry_id: int, position: int) -> None:
        """Put the entry at `position` (1 = first); positions past the end mean last."""
        if position < 1:
            raise QueueError(f"position {position}: positions start at 1 (the first entry)")
        with self._editing() as contents:
            entry = self._find(contents.entries, entry_id)
            contents.entries.remove(entry)
            contents.entries.insert(min(position, len(contents.entries) + 1) - 1, entry)

    def clear_done(self) -> int:
        """Forget the finished entries (their runs and exports stay on disk); returns how many."""
        with self._editing() as contents:
            before = len(contents.entries)
            contents.entries[:] = [e for e in contents.entries if e.state != "done"]
            return before - len(contents.entries)

    def requeue(self, entry_id: int) -> QueueEntry:
        """Queue a failed, stopped or interrupted entry again: it resumes from its checkpoint if it has one."""
        active = self.runner_active()
        with self._editing() as contents:
            entry = self._find(contents.entries, entry_id)
            if entry.state == "queued" or (entry.state == "running" and active):
                raise QueueError(f"queue entry {entry_id} is already {entry.state}")
            return self._set(contents, entry_id, state="queued", error="", hint="",
                             export="" if entry.state == "done" else entry.export,
                             run_dir="" if entry.state == "done" else entry.run_dir)

    def update(self, entry_id: int, **changes) -> QueueEntry:
        """Record what happened to an entry (state, export, error): the runners call this."""
        with self._editing() as contents:
            return self._set(contents, entry_id, **changes)

    def finish(self, entry_id: int, *, outputs: Sequence[str], stopped: bool) -> QueueEntry:
        """The entry's run ended with these exports (the last is the final one)."""
        export = str(outputs[-1]) if outputs else ""
        return self.update(entry_id, state="stopped" if stopped else "done", export=export, error="", hint="")

    def fail(self, entry_id: int, error: str, hint: str = "") -> QueueEntry:
        return self.update(entry_id, state="failed", error=error, hint=hint)

    # running ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[TrainQueue]:
        """Hold the runner's lock; QueueError when another process is running this queue."""
        if not self._runner.acquire(blocking=False):
            raise QueueError(f"the queue {self.path} is being run by another LoRA Studio process",
                             hint="wait for it to end, or stop it (Ctrl+C in its terminal, Stop in the window)")
        try:
            yield self
        finally:
            self._runner.release()

    def start_next(self) -> TrainPlan | None:
        """The next entry to train, marked running with its run folder recorded; None when nothing is left.
        Call it while holding `running()`: an entry still marked running then belongs to a runner that died,
        and is resumed in its place in the order. An entry whose settings cannot be read is marked failed."""
        while True:
            with self._editing() as contents:
                entry = next((e for e in contents.entries if e.state in ("running", "queued")), None)
                if entry is None:
                    return None
                try:
                    plan = plan_entry(entry)
                except StudioError as exc:
                    self._set(contents, entry.id, state="failed", error=str(exc), hint=exc.hint)
                    continue
                self._set(contents, entry.id, state="running", run_dir=plan.run_dir, error="", hint="")
                return plan

    # the file -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _editing(self) -> Iterator[_Contents]:
        lock = _FileLock(self.path.with_name(self.path.name + ".lock"))
        lock.acquire(blocking=True)
        try:
            raw = self._raw()
            contents = _decode(raw, self.path, self.backup_path)
            yield contents
            if raw is not None:
                atomic_write_bytes(self.backup_path, raw)
            atomic_write_bytes(self.path, _encode(contents))
        finally:
            lock.release()

    def _read(self) -> _Contents:
        return _decode(self._raw(), self.path, self.backup_path)

    def _raw(self) -> bytes | None:
        if not os.path.lexists(self.path):
            return None
        return read_capped(self.path, "the training queue", limit=QUEUE_FILE_LIMIT, error=QueueError,
                           hint=_damaged_hint(self.path, self.backup_path))

    @staticmethod
    def _find(entries: list[QueueEntry], entry_id: int) -> QueueEntry:
        for entry in entries:
            if entry.id == entry_id:
                return entry
        known = ", ".join(str(e.id) for e in entries) or "none: the queue is empty"
        raise QueueError(f"there is no queue entry {entry_id} (entries: {known})",
                         hint="`lora-studio queue list` shows the entries and their numbers")

    def _set(self, contents: _Contents, entry_id: int, **changes) -> QueueEntry:
        entry = self._find(contents.entries, entry_id)
        new = replace(entry, **changes)
        contents.entries[contents.entries.index(entry)] = new
        return new


def read_project_text(path: Path) -> str:
    raw = read_capped(path, "project file", limit=QUEUE_FILE_LIMIT, error=QueueError,
                      hint="queue a project.toml file")
    try:
        return decode_text(raw)
    except NotUtf8Error as exc:
        raise QueueError(f"{path}: not a text file LoRA Studio can read: {exc.reason}",
                         hint="save it again as UTF-8 text") from None


def plan_entry(entry: QueueEntry) -> TrainPlan:
    """What `entry` trains now: resumed from the checkpoint in its run folder with that run's own config.toml
    (so later edits to the project cannot make the resume refuse); else its snapshot or the project file as
    it is now, in its run folder, or a new one in the project's `runs/`."""
    project = Path(entry.project)
    point = entry.checkpoint()
    if point is not None:
        text = read_project_text(Path(entry.run_dir) / "config.toml")
        loads_project(text, f"{entry.run_dir}/config.toml")
        return TrainPlan(entry.id, text, str(project), entry.run_dir, resume_from=str(point[1]), start_step=point[0])
    text = entry.config_toml or read_project_text(project)
    cfg = loads_project(text, str(project))
    if entry.run_dir and Path(entry.run_dir).is_dir():
        run_dir = Path(entry.run_dir)
    else:
        run_dir = new_run_dir(resolve_path(project, "runs"), cfg.output.name)
    return TrainPlan(entry.id, text, str(project), str(run_dir))


def _damaged_hint(path: Path, backup: Path) -> str:
    if backup.is_file():
        return (f"the version before the last change is {backup}: rename it to {path.name} to go back to it; "
                "until then the queue is left as it is")
    return f"move {path} away to start an empty queue; until then it is left as it is"


def _damaged(path: Path, backup: Path, what: str) -> QueueError:
    return QueueError(f"the training queue {path} is damaged: {what}", hint=_damaged_hint(path, backup))


def _decode(raw: bytes | None, path: Path, backup: Path) -> _Contents:
    """Strict, through the one codec: every key known, every value of its type, ids unique; else `_damaged`.
    No file (`raw` None) is an empty queue."""
    if raw is None:
        return _Contents(QUEUE_FORMAT, 1, [])
    try:
        data = json.loads(decode_text(raw))
    except (NotUtf8Error, ValueError, RecursionError) as exc:
        raise _damaged(path, backup, f"not JSON ({str(exc)[:80]})") from None
    version = data.get("format") if isinstance(data, dict) else None
    if isinstance(version, int) and version > QUEUE_FORMAT:  # before the fields: a newer format may add some
        raise _damaged(path, backup, f"written by a newer LoRA Studio (format {version}); update LoRA Studio")
    try:
        return from_data(data, _Contents, where="queue")
    except CodecError as exc:
        raise _damaged(path, backup, str(exc)) from None


def _encode(contents: _Contents) -> bytes:
    return (json.dumps(to_data(contents), indent=1, ensure_ascii=True) + "\n").encode("ascii")
