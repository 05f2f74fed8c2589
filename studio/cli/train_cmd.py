"""`lora-studio train [PROJECT.toml] [flags]`: train headless; flags override the project file.

The config flags are generated (`config_flags`); the ones here are about the run, not the project. Every
problem with the settings and the files they name is printed at once (exit 2) before anything is loaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.config_flags import add_config_flags, apply_overrides, overrides
from studio.config import ProjectConfig, load_preset, load_project, preset_names
from studio.errors import ConfigError
from studio.validate import check_files, errors_of, validate


def register(sub) -> None:
    p = sub.add_parser("train", help="train a LoRA (no project file needed: flags are enough)",
                       usage="lora-studio train [PROJECT.toml] [--preset NAME] [--resume CHECKPOINT] [--FIELD VALUE …] "
                             "[--set SECTION.KEY=VALUE …]",
                       description="Train a LoRA and export it. Prints the exported file's path as the last line. "
                                   "Flags override the project file; each is a project-file field.")
    p.add_argument("project", nargs="?", type=Path, help="project.toml (optional)")
    p.add_argument("--preset", choices=preset_names(), help="start from a preset")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint folder (runs/…/checkpoints/checkpoint-N)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> ProjectConfig:
    """The project file, the preset, then the flags; ConfigError lists every problem found, not the first."""
    cfg = load_project(args.project) if args.project else ProjectConfig()
    if args.preset:
        cfg = load_preset(args.preset, cfg)
    cfg, problems = apply_overrides(cfg, overrides(args))
    if problems:  # the rules between fields would judge values the flags did not manage to set: these first
        raise ConfigError.from_problems(problems, "command line")
    problems = validate(cfg) + check_files(cfg, args.project)
    if errors := errors_of(problems):
        raise ConfigError.from_problems(errors)
    for warning in problems:
        print(f"warning: {warning.message}" + (f" ({warning.hint})" if warning.hint else ""))
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = build_config(args)  # before the engine (and torch) is imported: a bad setting is told in a second

    from studio.cli.progress import train_here

    finished = train_here(cfg, quiet=args.quiet, project_file=args.project, resume_from=args.resume)
    if not finished.outputs:
        print("stopped before the first save; nothing was exported")
        return 1
    print(finished.outputs[-1])
    return 0
