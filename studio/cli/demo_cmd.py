"""`lora-studio demo [--out DIR] [--steps N]`: build the demo project, train, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="train the bundled demo project (tiny model, no download)",
                       description="Build the demo project in --out, train it and print the exported file's path.")
    p.add_argument("--out", type=Path, default=Path("lora-studio-demo"), help="project folder (default: %(default)s)")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the demo preset's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.cli.progress import train_here
    from studio.config import apply_mapping, load_project
    from studio.demo import create_demo_project

    project = create_demo_project(args.out)
    cfg = load_project(project)
    if args.steps is not None:
        cfg = apply_mapping(cfg, {"schedule": {"max_steps": args.steps}}, "command line")
    finished = train_here(cfg, quiet=args.quiet, project_file=project)
    if not finished.outputs:  # stopped (Ctrl+C) before the first step: there is nothing to export
        print("stopped before the first step; nothing was exported", file=sys.stderr)
        return 130
    print(finished.outputs[-1])
    return 0
