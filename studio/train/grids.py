"""A contact sheet of the previews: one row per step, one column per prompt, the same seeds in every row,
so a row-to-row difference is the training alone; how a user picks a run's best save at a glance.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw

from studio.fileio import atomic_write_with

SAMPLE_NAME = re.compile(r"^step-(\d+)-(\d+)\.png$")
LABEL_WIDTH = 96
GRID_NAME = "grid.png"


def write_grid(folder: Path) -> Path | None:
    found: dict[int, dict[int, Path]] = {}  # step → prompt index → file
    for path in folder.glob("step-*.png"):
        if m := SAMPLE_NAME.match(path.name):
            found.setdefault(int(m.group(1)), {})[int(m.group(2))] = path
    if not found:
        return None
    steps = sorted(found)
    columns = max(i for row in found.values() for i in row) + 1
    with Image.open(next(iter(found[steps[0]].values()))) as first:
        width, height = first.size
    grid = Image.new("RGB", (LABEL_WIDTH + columns * width, len(steps) * height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for row, step in enumerate(steps):
        draw.text((6, row * height + 6), f"step {step}", fill=(0, 0, 0))
        for col, path in found[step].items():
            with Image.open(path) as im:
                tile = im.convert("RGB")
                if tile.size != (width, height):
                    tile = tile.resize((width, height))
                grid.paste(tile, (LABEL_WIDTH + col * width, row * height))
    target = folder / GRID_NAME
    atomic_write_with(target, lambda tmp: grid.save(tmp, format="PNG"))
    return target
