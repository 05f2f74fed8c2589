"""Run folders: `<project>/runs/<timestamp>-<name>/` with a config snapshot and a JSON-lines event log."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from studio.config import ProjectConfig, dumps_project
from studio.errors import ConfigError
from studio.events import Event, event_to_dict
from studio.fileio import atomic_write_text


def check_writable_folder(path: Path, what: str) -> None:
    """ConfigError unless `path` is a folder we can write into, or can be created: checked before the model
    loads, so `--out` naming a file or a read-only folder is told at once, not as a crash minutes later."""
    import errno

    probe = Path(path)
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        from studio.safe_read import describe

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
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
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


def _is_regular(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # a symlink loop, a link to nothing
        return False


class EventLog:
    """Appends events to `events.jsonl`, one line each, flushed, so a crash loses at most a partial line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if os.path.lexists(path) and not _is_regular(path):  # a FIFO would block the open
            from studio.safe_read import describe

            raise ConfigError(f"the run's event log {path} is {describe(path)}, not a file",
                              hint="move it away, or start a new run")
        # backslashreplace: a non-UTF-8 file name in a message becomes the JSON escape `\udcff`, which reads back as
        # the same string, where "strict" would fail the run on its first log line
        self._fh = open(path, "a", encoding="utf-8", errors="backslashreplace")

    def write(self, event: Event) -> None:
        self._fh.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_events(path: Path) -> list[dict]:
    """Every complete, valid line of an event log (a torn last line after a kill is skipped)."""
    import stat

    events: list[dict] = []
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block, a device never end: not an event log
            return events
        with open(path, "rb") as fh:
            data = fh.read(MAX_EVENT_LOG_BYTES)
            if st.st_size > MAX_EVENT_LOG_BYTES:  # the start (Started) and the newest events; lines cut are skipped
                fh.seek(st.st_size - MAX_EVENT_LOG_BYTES // 2)
                data = data[: MAX_EVENT_LOG_BYTES // 2] + b"\n" + fh.read(MAX_EVENT_LOG_BYTES // 2)
        text = data.decode("utf-8", "replace")
    except OSError:
        return events
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "type" in item:
            events.append(item)
    return events
