"""Strength grids: the same prompt and seed at every combination of two LoRAs' strengths, in one labelled image.

A grid answers "where do these two stop fighting?" at a glance, instead of an X/Y plot script and a lot of
re-generation. `PreviewSession.render_grid` renders the cells; this module (Qt-free) draws the sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from studio.errors import ConfigError


@dataclass(frozen=True)
class GridAxis:
    """Strength values for one LoRA (its index in the request's `loras`)."""

    lora: int
    values: tuple[float, ...] = (0.0, 0.5, 1.0)
    label: str = ""


@dataclass
class GridResult:
    image: Image.Image
    cells: list[tuple[tuple[float, ...], Image.Image]] = field(default_factory=list)  # ((x, y), image)


def check_axes(x: GridAxis, y: GridAxis | None, n_loras: int, max_cells: int = 64) -> None:
    for axis in (x, y) if y is not None else (x,):
        if not 0 <= axis.lora < n_loras:
            raise ConfigError(f"grid axis names LoRA #{axis.lora + 1}, but the mix has {n_loras}")
        if not axis.values:
            raise ConfigError("a grid axis needs at least one strength")
    if y is not None and y.lora == x.lora:
        raise ConfigError("the two grid axes must be different LoRAs")
    cells = len(x.values) * (len(y.values) if y else 1)
    if cells > max_cells:
        raise ConfigError(f"a {cells}-cell grid is too large (at most {max_cells})")


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def compose(cells: Sequence[Image.Image], x: GridAxis, y: GridAxis | None, *, pad: int = 4) -> Image.Image:
    """Cells (row-major, y outer) on a white sheet: the x LoRA's name and strengths across the top, the y
    LoRA's name and strengths in a left column wide enough for both, so no label overlaps another."""
    cols = len(x.values)
    rows = len(y.values) if y else 1
    w, h = cells[0].size
    font_size = max(11, min(24, w // 8))
    font = _font(font_size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = font_size + pad
    x_title = x.label or f"LoRA {x.lora + 1}"
    y_title = (y.label or f"LoRA {y.lora + 1}") if y else ""
    left = pad
    if y:
        widest = max(probe.textlength(text, font=font) for text in (y_title, *(f"{v:g}" for v in y.values)))
        left = int(widest) + 3 * pad
    grid_w = cols * (w + pad)
    top = 2 * line + 2 * pad
    sheet_w = max(left + grid_w, int(probe.textlength(x_title, font=font)) + left + pad)
    sheet = Image.new("RGB", (sheet_w, top + rows * (h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    title_w = probe.textlength(x_title, font=font)
    draw.text((max(left, left + (grid_w - title_w) / 2), pad), x_title, fill="black", font=font)
    for c, v in enumerate(x.values):
        draw.text((left + c * (w + pad) + w // 2, pad + line), f"{v:g}", fill="black", font=font, anchor="ma")
    if y:
        draw.text((pad, pad + line), y_title, fill="black", font=font)
        for r, v in enumerate(y.values):
            draw.text((left - 2 * pad, top + r * (h + pad) + h // 2), f"{v:g}", fill="black", font=font,
                      anchor="rm")
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        sheet.paste(cell.convert("RGB"), (left + c * (w + pad), top + r * (h + pad)))
    return sheet
