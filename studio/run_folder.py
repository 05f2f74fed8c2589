"""Run folders: `<project>/runs/<timestamp>-<name>/`, the one owner of their layout.

A run folder holds `config.toml` (the settings snapshot), `events.jsonl` (every event, one JSON line each),
`checkpoints/checkpoint-<step>/` (resumable; `state.json` is written last, so a folder without it is
incomplete), previews and intermediate exports. The engine writes them; the History and Train panels read
them, so this is torch-free (the window must not import torch: 7–9 s).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from studio.codec import CodecError, from_data, to_data
from studio.config import ProjectConfig, dumps_project
from studio.errors import ConfigError, StudioError
from studio.events import EVENT_TYPES, Checkpoint, Event, Failed, Finished, Progress, Sample, Started
from studio.fileio import atomic_write_text
from studio.safe_names import safe_file_name
from studio.safe_read import describe, read_capped


CHECKPOINT_STATE = "state.json"  # written last into a checkpoint folder
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"checkpoint-{step:07d}"


def check_writable_folder(path: Path, what: str) -> None:
    """ConfigError unless `path` is a folder we can write into, or can be created: checked before the model
    loads, so `--out` naming a file or a read-only folder is told at once, not as a crash minutes later."""
    probe = Path(path)
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        where = f"{what} {path}" if probe == Path(path) else f"{what} {path}: {probe}"
        raise ConfigError(f"{where} is {describe(probe)}, not a folder",
                          hint="choose a folder (or a new folder's name) for the output")
    if not os.access(probe, os.W_OK | os.X_OK):
        try:  # only POSIX tells a read-only disk apart (no statvfs on Windows)
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except (AttributeError, OSError):
            read_only = False
        reason = os.strerror(errno.EROFS if read_only else errno.EACCES).lower()
        raise ConfigError(f"{what} {path}: cannot write into {probe} ({reason})",
                          hint="choose a folder you can write to")


#: an event log is ~200 bytes a step; beyond this only its end is read (a corrupt or foreign file stays bounded)
MAX_EVENT_LOG_BYTES = 256 * 2**20


def new_run_dir(runs_root: Path, name: str) -> Path:
    # the name part cut to 60 characters: with the time stamp and a number the folder name stays short
    safe = safe_file_name(re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60], "run")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_root / f"{stamp}-{safe}"
    n = 1
    while path.exists():
        n += 1
        path = runs_root / f"{stamp}-{safe}-{n}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run folder {path} ({exc.strerror})",
                          hint="choose an output folder you can write to") from None
    return path


def write_config_snapshot(run_dir: Path, cfg: ProjectConfig) -> None:
    atomic_write_text(run_dir / "config.toml", dumps_project(cfg))


class EventLog:
    """Appends events to `events.jsonl`, one line each, flushed, so a crash loses at most a partial line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if os.path.lexists(path) and describe(path) != "a file":  # a FIFO would block the open
            raise ConfigError(f"the run's event log {path} is {describe(path)}, not a file",
                              hint="move it away, or start a new run")
        # backslashreplace: a non-UTF-8 file name in a message becomes the JSON escape `\udcff`, which reads back as
        # the same string, where "strict" would fail the run on its first log line
        self._fh = open(path, "a", encoding="utf-8", errors="backslashreplace")

    def write(self, event: Event) -> None:
        self._fh.write(event_line(event) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def event_line(event: Event) -> str:
    """One line of `events.jsonl`: the event's fields (through the one codec) tagged with its type name.
    A NaN or infinite loss is written as NaN/Infinity, so a diverged run reads back as diverged."""
    return json.dumps({"type": event.type, **to_data(event)}, ensure_ascii=False)


def parse_event_line(line: str) -> Event | None:
    """The event on one line of `events.jsonl`, or None for a line that is not one (torn, garbage, or an
    event of another version): the log is a record to show, so one bad line costs only itself."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None
    cls = EVENT_TYPES.get(data.pop("type"))
    if cls is None:
        return None
    try:
        return from_data(data, cls, where=cls.type)
    except CodecError:
        return None


def read_events(path: Path) -> list[Event]:
    """Every complete, valid event of an event log, typed (a torn last line after a kill is skipped)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block, a device never end: not an event log
            return []
        with open(path, "rb") as fh:
            data = fh.read(MAX_EVENT_LOG_BYTES)
            if st.st_size > MAX_EVENT_LOG_BYTES:  # the start (Started) and the newest events; lines cut are skipped
                fh.seek(st.st_size - MAX_EVENT_LOG_BYTES // 2)
                data = data[: MAX_EVENT_LOG_BYTES // 2] + b"\n" + fh.read(MAX_EVENT_LOG_BYTES // 2)
        text = data.decode("utf-8-sig", "replace")  # a BOM would hide the first event
    except OSError:
        return []
    return [event for event in map(parse_event_line, text.splitlines()) if event is not None]


@dataclass(frozen=True)
class RunSummary:
    path: Path
    name: str
    status: str  # "finished", "stopped", "failed" or "interrupted" (no end event: killed, crashed, or running)
    total_steps: int = 0
    last_step: int = 0
    final_loss: float | None = None
    outputs: tuple[str, ...] = ()
    error: str = ""
    hint: str = ""
    last_checkpoint: Path | None = None
    checkpoint_step: int = 0
    num_samples: int = 0
    config_text: str = ""
    modified: float = 0.0

    @property
    def resumable(self) -> bool:
        return self.last_checkpoint is not None and self.status != "finished" and self.checkpoint_step < self.total_steps


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (their state file written), oldest first."""
    try:
        entries = list((Path(run_dir) / "checkpoints").iterdir())
    except OSError:
        return []
    found = [(int(m.group(1)), e) for e in entries if (m := _CHECKPOINT.match(e.name))]
    return sorted(f for f in found if (f[1] / CHECKPOINT_STATE).is_file())


def last_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def read_run(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    events = read_events(run_dir / "events.jsonl")
    status, total, step, loss, outputs, error, hint, samples = "interrupted", 0, 0, None, [], "", "", 0
    exports: list[str] = []
    for e in events:
        if isinstance(e, Started):  # a resumed run starts over from its checkpoint: so does its summary
            total, step = e.total_steps, e.start_step
            status, outputs, error, hint = "interrupted", [], "", ""
        elif isinstance(e, Progress):
            step, loss = e.step, e.loss
        elif isinstance(e, Checkpoint) and e.lora_path:
            exports.append(e.lora_path)
        elif isinstance(e, Sample):
            samples += 1
        elif isinstance(e, Finished):
            status = "stopped" if e.stopped else "finished"
            outputs = list(e.outputs)
        elif isinstance(e, Failed):
            status, error, hint = "failed", e.error, e.hint
    if not outputs:
        outputs = exports
    ckpt_step, ckpt_path = last_checkpoint(run_dir) or (0, None)
    try:  # a FIFO or a device in a run folder must not hang the run list
        config_text = read_capped(run_dir / "config.toml", "run config", limit=4 * 2**20).decode("utf-8", "replace")
    except StudioError:
        config_text = ""
    try:
        modified = max(os.stat(run_dir).st_mtime, os.stat(run_dir / "events.jsonl").st_mtime)
    except OSError:
        modified = 0.0
    return RunSummary(path=run_dir, name=run_dir.name, status=status, total_steps=total, last_step=step,
                      final_loss=loss, outputs=tuple(o for o in dict.fromkeys(outputs) if Path(o).is_file()),
                      error=error, hint=hint, last_checkpoint=ckpt_path, checkpoint_step=ckpt_step,
                      num_samples=samples, config_text=config_text, modified=modified)


def run_dirs(project_dir: Path) -> list[Path]:
    """The project's run folders, newest first (their names start with their time stamp)."""
    try:
        folders = [d for d in (Path(project_dir) / "runs").iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []
    return sorted(folders, key=lambda d: d.name, reverse=True)


def list_runs(project_dir: Path) -> list[RunSummary]:
    """Every run of the project, newest first."""
    return [read_run(d) for d in run_dirs(project_dir)]


def clean_partial_files(run_dir: Path, *top_level: Path) -> list[Path]:
    """Remove the temporaries an interrupted atomic write leaves (`.<name>.<random>….tmp`, `.<name>.old`):
    throughout the run folder, but in other folders (an export folder may be shared with other programs) only
    at the top and only `.*.safetensors….tmp` and `.*.compat.json….tmp`, so nothing the user made can go.
    Call it only when no worker writes there (after a death)."""
    candidates = [q for q in Path(run_dir).rglob(".*") if q.name.endswith((".tmp", ".old"))]
    for folder in top_level:
        try:
            candidates += [q for q in Path(folder).iterdir()
                           if q.name.startswith(".") and (".safetensors" in q.name or ".compat.json" in q.name)
                           and q.name.endswith(".tmp")]
        except OSError:
            continue
    removed = []
    for path in sorted(candidates, key=lambda q: len(q.parts), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
