"""`lora-studio train [PROJECT.toml] [flags]`: train headless; flags override the project file."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.config import ProjectConfig, apply_mapping, load_preset, load_project, preset_names


def register(sub) -> None:
    p = sub.add_parser("train", help="train a LoRA (no project file needed: flags are enough)",
                       description="Train a LoRA and export it. Prints the exported file's path as the last line.")
    p.add_argument("project", nargs="?", type=Path, help="project.toml (optional)")
    p.add_argument("--preset", choices=preset_names(), help="start from a preset")
    p.add_argument("--model", help="base model: diffusers folder, .safetensors or .ckpt checkpoint")
    p.add_argument("--data", action="append", help="image folder (repeatable)")
    p.add_argument("--steps", type=int, help="optimizer steps")
    p.add_argument("--rank", type=int, help="LoRA rank")
    p.add_argument("--alpha", type=float, help="LoRA alpha")
    p.add_argument("--resolution", type=int, help="training resolution in pixels")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--lr", type=float, help="UNet learning rate")
    p.add_argument("--out", help="output folder for the exported LoRA")
    p.add_argument("--name", help="name of the exported file")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint folder (runs/…/checkpoints/checkpoint-N)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict:
    """The flags the user gave, as a project-file mapping (so they are validated like the file)."""
    table = {
        ("model", "path"): args.model, ("dataset", "folders"): args.data, ("schedule", "max_steps"): args.steps,
        ("network", "rank"): args.rank, ("network", "alpha"): args.alpha,
        ("dataset", "resolution"): args.resolution, ("schedule", "batch_size"): args.batch_size,
        ("optimizer", "unet_lr"): args.lr, ("output", "directory"): args.out, ("output", "name"): args.name,
    }
    out: dict = {}
    for (section, key), value in table.items():
        if value is not None:
            if key in ("path", "directory", "folders"):
                value = [str(Path(v).resolve()) for v in value] if isinstance(value, list) else str(Path(value).resolve())
            out.setdefault(section, {})[key] = value
    return out


def build_config(args: argparse.Namespace) -> ProjectConfig:
    cfg = load_project(args.project) if args.project else ProjectConfig()
    if args.preset:
        cfg = load_preset(args.preset, cfg)
    return apply_mapping(cfg, overrides(args), "command line")


def run(args: argparse.Namespace) -> int:
    from studio.cli.progress import follow, stop_on_ctrl_c
    from studio.train.control import TrainControl
    from studio.train.engine import run_training

    cfg = build_config(args)
    control = TrainControl()
    with stop_on_ctrl_c(control):
        finished = follow(run_training(cfg, project_file=args.project, control=control, resume_from=args.resume),
                          quiet=args.quiet)
    if not finished.outputs:
        print("stopped before the first save; nothing was exported")
        return 1
    print(finished.outputs[-1])
    return 0
