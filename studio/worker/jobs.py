"""Jobs the worker can run, by name. Training is one; the mixer's preview and others add theirs here.

A job is a function `(params: dict, control: TrainControl) -> Iterator[Event]` that polls `control`
between units of work and ends with a Finished or Failed event (the worker adds one if it does not).
Jobs are named by `"package.module:function"` strings and imported only when first run, so the worker
can announce itself before torch is loaded and a job's heavy imports cost nothing until it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.events import Event

JobFunction = Callable[[dict[str, Any], Any], Iterator[Event]]

#: kind → "module:function". Add an entry (or call `register_job` in a module the worker imports).
JOBS: dict[str, str] = {
    "train": "studio.worker.jobs:train_job",
    # the mixer's jobs (studio.mix.jobs): its preview session stays loaded between them
    "mix_preview": "studio.mix.jobs:preview_job",
    "mix_grid": "studio.mix.jobs:grid_job",
    "mix_export": "studio.mix.jobs:export_job",
    "mix_bake": "studio.mix.jobs:bake_job",
    # the Export boxes' "Save a plain-LoRA copy…" (docs/compatibility.md)
    "mix_plain": "studio.mix.jobs:plain_job",
}


def register_job(kind: str, target: str) -> None:
    if ":" not in target:
        raise ValueError(f"job target must be 'package.module:function', got {target!r}")
    JOBS[kind] = target


def resolve_job(kind: str) -> JobFunction:
    """The job function for `kind`; a registered name or, for jobs of this package, a `studio.…:function` target."""
    target = JOBS.get(kind)
    if target is None and kind.startswith("studio.") and ":" in kind:
        target = kind
    if target is None:
        raise StudioError(f"unknown job `{kind}`; known jobs: {', '.join(sorted(JOBS))}",
                          hint="the window and the worker may come from different versions; restart LoRA Studio")
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name, None)
    if not callable(func):
        raise StudioError(f"job `{kind}`: {target} is not a function")
    return func


def train_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """The training run of a `start` command (see `protocol.Start` for the params)."""
    from studio.config import loads_project
    from studio.train.engine import run_training

    from studio.events import Log
    from studio.validate import require_valid

    project_file = params.get("project_file")
    cfg = loads_project(params["config_toml"], project_file or "the training settings")
    # the checks the CLI and the form run, before the model loads: every error at once, in the same words
    for warning in require_valid(cfg, project_file):
        yield Log(level="warning", text=f"{warning.message} ({warning.hint})" if warning.hint else warning.message)
    yield from run_training(cfg, project_file=Path(project_file) if project_file else None, control=control,
                            resume_from=params.get("resume_from"), run_dir=params.get("run_dir"))
