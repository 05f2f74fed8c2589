"""The demo project: bundled photographs, a tiny random model made on the spot, the `demo` preset.

It shows the whole flow — dataset, training, previews, export — on any machine in a minute, with
nothing downloaded. The GUI's "Open demo project" and `lora-studio demo` both build it here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from studio.config import load_preset, save_project
from studio.resources import resource_path

DEMO_IMAGES = resource_path("demo", "images")


def create_demo_project(folder: str | Path) -> Path:
    """Create (or reuse) a demo project in `folder`; returns its `project.toml`."""
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
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
        cfg = load_preset("demo")
        cfg = cfg.with_section("dataset", folders=("dataset",))
        cfg = cfg.with_section("model", path="model")
        cfg = cfg.with_section("output", directory=".")
        save_project(cfg, project)
    return project
