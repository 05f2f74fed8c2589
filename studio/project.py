"""Starting a new project folder: `project.toml` from a preset, plus an empty `dataset/` to drop images into.

A project is just a folder, so an artist can move or back it up like any other. (The demo project has its
own builder, `studio.demo.create_demo_project`.)
"""

from __future__ import annotations

import re
from pathlib import Path

from studio.config import ProjectConfig, load_preset, rebase_paths, save_project
from studio.dataset.state import load_state, save_state, state_path
from studio.errors import ConfigError
from studio.safe_names import refuse_unsafe_name, safe_file_name

PROJECT_FILE = "project.toml"
DATASET_FOLDER = "dataset"


def lora_name(folder: Path) -> str:
    """A file-name-safe LoRA name from the folder name ("My Cat!" → "my-cat", "CON" → "con_")."""
    return safe_file_name(re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-"), "lora")


def create_project(folder: str | Path, preset: str, *, output_dir: str | Path | None = None) -> Path:
    """Create `folder/project.toml` from `preset` ("" for the default settings), never over an existing one;
    returns its path. Exports go to `output_dir` (the user's default output folder), else `output/`."""
    folder = Path(folder).expanduser().resolve()
    project = folder / PROJECT_FILE
    if project.exists():
        raise ConfigError(f"{project} already exists",
                          hint="Open it with Open Project, or choose an empty folder for a new one.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATASET_FOLDER).mkdir(exist_ok=True)
    cfg = load_preset(preset) if preset else ProjectConfig()
    cfg = cfg.with_section("dataset", folders=(DATASET_FOLDER,))
    cfg = cfg.with_section("output", name=lora_name(folder), directory=str(Path(output_dir).expanduser()) if output_dir
                           else "output")
    save_project(cfg, project)
    return project


def save_project_as(cfg: ProjectConfig, old_file: str | Path | None, new_file: str | Path) -> ProjectConfig:
    """Save the project under another name or folder without losing what it points at; returns the config
    as saved (relative paths rewritten). The Dataset panel's `dataset.json` goes along to a new folder,
    unless that folder already has its own."""
    new_file = refuse_unsafe_name(Path(new_file).expanduser().resolve(), "the project file")
    cfg = rebase_paths(cfg, old_file, new_file)
    if old_file is not None:
        old_dir = Path(old_file).expanduser().resolve().parent
        if old_dir != new_file.parent and state_path(old_dir).is_file() and not state_path(new_file.parent).exists():
            new_file.parent.mkdir(parents=True, exist_ok=True)
            save_state(load_state(old_dir), new_file.parent)
    save_project(cfg, new_file)
    return cfg
