"""Reading a project's past runs (`runs/<timestamp-name>/`) for the run history, without torch.

The window must not import torch (7–9 s), so this reads the run folder's plain files — `config.toml`,
`events.jsonl`, `checkpoints/checkpoint-<step>/state.json` — itself. It also cleans what a killed worker
can leave behind: the hidden temporary files of an atomic write that never got renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from studio.train.runs import read_events

CHECKPOINT_STATE = "state.json"  # written last into a checkpoint folder, see studio.train.checkpoint
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


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
    found = []
    try:
        entries = list((Path(run_dir) / "checkpoints").iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _CHECKPOINT.match(entry.name)
        if m and (entry / CHECKPOINT_STATE).is_file():
            found.append((int(m.group(1)), entry))
    return sorted(found)


def last_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def read_run(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    events = read_events(run_dir / "events.jsonl")
    status, total, step, loss, outputs, error, hint, samples = "interrupted", 0, 0, None, [], "", "", 0
    exports: list[str] = []
    for e in events:
        kind = e.get("type")
        if kind == "started":  # a resumed run starts over from its checkpoint: so does its summary
            total = int(e.get("total_steps", 0) or 0)
            step = int(e.get("start_step", 0) or 0)
            status, outputs, error, hint = "interrupted", [], "", ""
        elif kind == "progress":
            step = int(e.get("step", step) or step)
            loss = e.get("loss", loss)
        elif kind == "checkpoint" and e.get("lora_path"):
            exports.append(str(e["lora_path"]))
        elif kind == "sample":
            samples += 1
        elif kind == "finished":
            status = "stopped" if e.get("stopped") else "finished"
            outputs = [str(o) for o in e.get("outputs", [])]
        elif kind == "failed":
            status, error, hint = "failed", str(e.get("error", "")), str(e.get("hint", ""))
    if not outputs:
        outputs = exports
    ckpt = last_checkpoint(run_dir)
    from studio.errors import StudioError
    from studio.safe_read import read_capped

    try:  # a FIFO or a device in a run folder must not hang the run list
        config_text = read_capped(run_dir / "config.toml", "run config", limit=4 * 2**20).decode("utf-8", "replace")
    except StudioError:
        config_text = ""
    try:
        modified = max(os.stat(run_dir).st_mtime, os.stat(run_dir / "events.jsonl").st_mtime)
    except OSError:
        modified = 0.0
    return RunSummary(path=run_dir, name=run_dir.name, status=status, total_steps=total, last_step=step,
                      final_loss=float(loss) if isinstance(loss, (int, float)) else None,
                      outputs=tuple(o for o in dict.fromkeys(outputs) if Path(o).is_file()), error=error, hint=hint,
                      last_checkpoint=ckpt[1] if ckpt else None, checkpoint_step=ckpt[0] if ckpt else 0,
                      num_samples=samples, config_text=config_text, modified=modified)


def list_runs(project_dir: Path) -> list[RunSummary]:
    """Every run folder of the project, newest first."""
    root = Path(project_dir) / "runs"
    try:
        folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []
    return sorted((read_run(d) for d in folders), key=lambda r: r.name, reverse=True)


def sample_images(run_dir: Path) -> list[tuple[int, str, str]]:
    """(step, prompt, path) of every preview a run made, from its event log, for files that still exist."""
    out = []
    for e in read_events(Path(run_dir) / "events.jsonl"):
        if e.get("type") == "sample" and Path(str(e.get("path", ""))).is_file():
            out.append((int(e.get("step", 0)), str(e.get("prompt", "")), str(e["path"])))
    return out


def clean_partial_files(run_dir: Path, *top_level: Path) -> list[Path]:
    """Remove the temporaries an interrupted atomic write leaves (`.<name>.<random>….tmp`, `.<name>.old`).

    The run folder is searched throughout; other folders (the export folder, which may be shared with other
    programs) only at their top level and only for `.*.safetensors….tmp`. Only hidden names of those shapes
    are touched, so nothing the user made can go. Call it only when no worker writes there (after a death).
    """
    candidates = [q for q in Path(run_dir).rglob(".*") if q.name.endswith((".tmp", ".old"))]
    for folder in top_level:
        try:
            candidates += [q for q in Path(folder).iterdir()
                           if q.name.startswith(".") and ".safetensors" in q.name and q.name.endswith(".tmp")]
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
