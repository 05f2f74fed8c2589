"""The worker's job table: which function runs each typed request (`studio.job_requests`).

A job is a function `(request, control) -> Iterator[Event]` that polls `control` between units of work and
ends with a Finished or Failed event (the worker adds one if it does not). Targets are imported when the job
first runs, so the worker announces itself before torch loads. Nothing on the pipe can name a function:
the request class is the only key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.events import Event, Log
from studio.job_requests import (AutoCaptionRequest, DemoProjectRequest, JobRequest, MixBakeRequest, MixExportRequest,
                                 MixGridRequest, MixPreviewRequest, PlainCopyRequest, TrainRequest)

JOBS: dict[type[JobRequest], str] = {
    TrainRequest: "studio.worker.jobs:train_job",
    # the mixer's jobs: its preview session stays loaded between them
    MixPreviewRequest: "studio.mix.jobs:preview_job",
    MixGridRequest: "studio.mix.jobs:grid_job",
    MixExportRequest: "studio.mix.jobs:export_job",
    MixBakeRequest: "studio.mix.jobs:bake_job",
    PlainCopyRequest: "studio.mix.jobs:plain_job",  # the Export boxes' "Save a plain-LoRA copy…"
    AutoCaptionRequest: "studio.dataset.autocaption:autocaption_job",
    DemoProjectRequest: "studio.demo:demo_project_job",  # its tiny model needs diffusers: never in the window
}


def resolve_job(request: JobRequest) -> Callable[[Any, Any], Iterator[Event]]:
    target = JOBS.get(type(request))
    if target is None:
        raise StudioError(f"the worker has no job for `{request.type}` requests",
                          hint="the window and the worker may come from different versions; restart LoRA Studio")
    module_name, _, func_name = target.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def train_job(request: TrainRequest, control: Any) -> Iterator[Event]:
    """A training run: the config arrives as TOML text (unsaved edits in the form are what trains)."""
    from studio.config import loads_project
    from studio.train.engine import run_training
    from studio.validate import require_valid

    project_file = request.project_file
    cfg = loads_project(request.config_toml, project_file or "the training settings")
    # the checks the CLI and the form run, before the model loads: every error at once, in the same words
    for warning in require_valid(cfg, project_file):
        yield Log(level="warning", text=f"{warning.message} ({warning.hint})" if warning.hint else warning.message)
    yield from run_training(cfg, project_file=Path(project_file) if project_file else None, control=control,
                            resume_from=request.resume_from, run_dir=request.run_dir)
