"""Render the app icon (`resources/icons/lora-studio.svg`) to the PNG sizes desktops ask for, plus .ico and .icns.

Run after editing the SVG: `.venv/bin/python resources/tools/make_icons.py`. The outputs are committed so a
launcher or a PyInstaller build needs neither Qt's SVG module nor this script. Qt renders the SVG (it is
the same renderer the app uses); Pillow packs the Windows .ico and macOS .icns from those PNGs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "icons"
SVG = ICONS / "lora-studio.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def png_name(size: int) -> str:
    return f"lora-studio-{size}.png"


def render_pngs() -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - painting needs one
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG")
    out = []
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        path = ICONS / png_name(size)
        if not image.save(str(path)):
            raise SystemExit(f"could not write {path}")
        out.append(path)
    return out


def pack_ico_icns() -> None:
    from PIL import Image

    big = Image.open(ICONS / png_name(512)).convert("RGBA")
    # .ico: Windows picks the nearest of these for the taskbar, Explorer and the title bar
    big.save(ICONS / "lora-studio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    big.save(ICONS / "lora-studio.icns")


def main() -> None:
    for path in render_pngs():
        print(path.relative_to(ICONS.parent.parent))
    pack_ico_icns()
    print("resources/icons/lora-studio.ico\nresources/icons/lora-studio.icns")


if __name__ == "__main__":
    main()
