"""Jobs the worker can run, by name. Training is one; the mixer's preview and others add theirs here.

A job is a function `(params: dict, control: TrainControl) -> Iterator[Event]` that polls `control`
between units of work and ends with a Finished or Failed event (the worker adds one if it does not).
Jobs are named by `"package.module:function"` strings and imported only when first run, so the worker
can announce itself before torch is loaded and a job's heavy imports cost nothing until it is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.errors import ConfigError, StudioError
from studio.events import Event

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

JobFunction = Callable[[dict[str, Any], Any], Iterator[Event]]

#: kind → "module:function". Add an entry (or call `register_job` in a module the worker imports).
JOBS: dict[str, str] = {
    "train": "studio.worker.jobs:train_job",
    # the mixer (studio.mix.jobs.MIX_JOBS): its preview session stays loaded between these jobs
    "mix_preview": "studio.mix.jobs:preview_job",
    "mix_grid": "studio.mix.jobs:grid_job",
    "mix_export": "studio.mix.jobs:export_job",
    "mix_bake": "studio.mix.jobs:bake_job",
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


def config_from_text(text: str, source: str) -> Any:
    """A ProjectConfig from TOML text, read exactly as `load_project` reads a file (preset, then sections)."""
    from studio.config import PROJECT_FORMAT_VERSION, ProjectConfig, apply_mapping, load_preset
    from studio.textfile import normalize_text

    try:
        data = tomllib.loads(normalize_text(text))  # as a file: a BOM and CRLF are fine
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number; arrays nested thousands deep
        raise ConfigError(f"{source}: not readable settings ({type(exc).__name__}: {str(exc)[:80]})") from None
    version = data.get("format_version", PROJECT_FORMAT_VERSION)
    if not isinstance(version, int) or version > PROJECT_FORMAT_VERSION:
        raise ConfigError(f"{source}: written by a newer LoRA Studio (format_version {version})",
                          hint="update LoRA Studio")
    cfg = ProjectConfig()
    preset = data.get("preset")
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"{source}: `preset` must be a string naming a preset")
        cfg = load_preset(preset, cfg)
    return apply_mapping(cfg, data, source)


def train_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """The training run of a `start` command (see `protocol.Start` for the params)."""
    from studio.train.engine import run_training

    project_file = params.get("project_file")
    cfg = config_from_text(params["config_toml"], project_file or "the training settings")
    yield from run_training(cfg, project_file=Path(project_file) if project_file else None, control=control,
                            resume_from=params.get("resume_from"), run_dir=params.get("run_dir"))
