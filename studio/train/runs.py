"""Run folders: `<project>/runs/<timestamp>-<name>/` with a config snapshot and a JSON-lines event log."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from studio.config import ProjectConfig, dumps_project
from studio.events import Event, event_to_dict
from studio.fileio import atomic_write_text
from studio.safe_names import safe_file_name


def new_run_dir(runs_root: Path, name: str) -> Path:
    # the name part cut to 60 characters: with the time stamp and a number the folder name stays short
    safe = safe_file_name(re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60], "run")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_root / f"{stamp}-{safe}"
    n = 1
    while path.exists():
        n += 1
        path = runs_root / f"{stamp}-{safe}-{n}"
    path.mkdir(parents=True)
    return path


def write_config_snapshot(run_dir: Path, cfg: ProjectConfig) -> None:
    atomic_write_text(run_dir / "config.toml", dumps_project(cfg))


class EventLog:
    """Appends events to `events.jsonl`, one line each, flushed, so a crash loses at most a partial line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, event: Event) -> None:
        self._fh.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_events(path: Path) -> list[dict]:
    """Every complete, valid line of an event log (a torn last line after a kill is skipped)."""
    events = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "type" in item:
            events.append(item)
    return events
