"""The demo project: bundled photographs, a tiny random model made on the spot, the `demo` preset.

It shows the whole flow on any machine in a minute, with nothing downloaded. The GUI asks the worker to build
it (`demo_project_job`): the tiny model needs diffusers and torch, which the window's process never imports.
Building replaces the folder's `model/`, so it only builds in a folder that is new, empty, or one it built
before (`MARKER`): `lora-studio demo --out ~/work` must never delete a checkpoint in `~/work/model/`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.config import load_preset, save_project
from studio.errors import ConfigError
from studio.events import Event, Finished, Log
from studio.fileio import atomic_write_text
from studio.job_requests import DemoProjectRequest
from studio.resources import resource_path
from studio.safe_read import describe

DEMO_IMAGES = resource_path("demo", "images")
#: written into every demo folder; its presence is what allows a later build to replace `model/`
MARKER = ".lora-studio-demo"
MARKER_TEXT = "This folder is a LoRA Studio demo project; `lora-studio demo` may rebuild its model/ folder.\n"


def _looks_like_an_earlier_demo(folder: Path) -> bool:
    """A demo folder made before the marker existed: our layout, and no model folder we would replace."""
    model = folder / "model"
    return ((folder / "project.toml").is_file() and (folder / "dataset" / "1_demo").is_dir()
            and (not model.exists() or (model / "model_index.json").is_file()))


def check_demo_folder(folder: Path) -> None:
    """Refuse a folder that is not the demo's own, before anything is created or deleted in it."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is {describe(folder)}, not a folder: the demo project needs a folder of its "
                          "own", hint="give --out a new or empty folder")
    if not folder.is_dir() or (folder / MARKER).is_file() or _looks_like_an_earlier_demo(folder):
        return
    try:
        has_files = any(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot read the folder ({exc.strerror})",
                          hint="give --out a new or empty folder") from None
    if has_files:
        raise ConfigError(f"{folder} is not empty and is not a demo project folder; the demo would replace "
                          "files in it, so it was left untouched",
                          hint="give --out a new or empty folder (or one an earlier demo made)")


def create_demo_project(folder: str | Path) -> Path:
    """Create (or reuse) a demo project in `folder`; returns its `project.toml`."""
    try:
        folder = Path(folder).expanduser().resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        raise ConfigError(f"{folder} is {describe(folder)}: the demo project needs a folder of its own",
                          hint="give --out a new or empty folder") from None
    check_demo_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create the demo folder ({exc.strerror})",
                          hint="give --out a folder you can write to") from None
    if not (folder / MARKER).is_file():
        atomic_write_text(folder / MARKER, MARKER_TEXT)
    try:
        _fill(folder)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write the demo project ({exc.strerror})",
                          hint="give --out a folder you can write to") from None
    return folder / "project.toml"


def demo_project_job(request: DemoProjectRequest, control: Any) -> Iterator[Event]:
    """The worker's job for the welcome screen's demo button: `Finished.outputs` is the `project.toml`."""
    yield Log(level="info", text=f"preparing the demo project in {request.folder} (the first time builds a tiny "
                                 "model: a few seconds)")
    yield Finished(outputs=(str(create_demo_project(request.folder)),))


def _fill(folder: Path) -> None:
    images = folder / "dataset" / "1_demo"
    if not any(images.glob("*.jpg")):
        images.mkdir(parents=True, exist_ok=True)
        for src in DEMO_IMAGES.iterdir():
            shutil.copy2(src, images / src.name)
    model = folder / "model"
    if not (model / "model_index.json").is_file():
        from studio.libraries import quiet_libraries
        from studio.models.tiny import save_tiny_model

        quiet_libraries()
        tmp = folder / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_tiny_model(tmp, "sd1", seed=0)
        shutil.rmtree(model, ignore_errors=True)
        tmp.rename(model)
    project = folder / "project.toml"
    if not project.is_file():
        cfg = load_preset("demo").with_section("dataset", folders=("dataset",))
        save_project(cfg.with_section("model", path="model").with_section("output", directory="."), project)
