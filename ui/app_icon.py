"""The app icon as a QIcon with every bundled PNG size, so each place (title bar, taskbar, Alt+Tab, the About
box) gets a crisp picture at 100 % and 200 % scaling instead of a scaled-down 512 px image."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from studio.resources import resource_path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    icon = QIcon()
    for size in SIZES:
        path = resource_path("icons", f"lora-studio-{size}.png")
        if path.is_file():
            icon.addFile(str(path))
    return icon
