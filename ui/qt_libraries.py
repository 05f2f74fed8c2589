"""Before the window: are the system libraries Qt's Linux display plugin needs installed?

pip brings Qt but not the X11/OpenGL libraries it links against; without them Qt only says "no Qt platform
plugin could be initialized" (issue 18). So `ldd` on the xcb plugin, and each missing soname is named with
its package. Nothing here imports Qt: it has to work exactly when Qt cannot.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

#: soname → (Debian/Ubuntu package, Fedora package). The Debian names are scripts/setup.sh's list.
PACKAGES: dict[str, tuple[str, str]] = {
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgobject-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libXrender.so.1": ("libxrender1", "libXrender"),
    "libXi.so.6": ("libxi6", "libXi"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found\s*$")

Runner = Callable[[Path], str]  # runs ldd on a file, returns its output


def missing_sonames(ldd_output: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in map(_NOT_FOUND.match, ldd_output.splitlines()) if m))


def packages_for(sonames: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(Debian packages, Fedora packages, sonames no package is known for), each without repeats."""
    known = [PACKAGES[name] for name in sonames if name in PACKAGES]
    unknown = [name for name in sonames if name not in PACKAGES]
    return list(dict.fromkeys(deb for deb, _ in known)), list(dict.fromkeys(fed for _, fed in known)), unknown


def missing_libraries_message(sonames: list[str], plugin: str = "xcb") -> str:
    debian, fedora, unknown = packages_for(sonames)
    lines = [f"LoRA Studio cannot open its window: Qt's display plugin ({plugin}) needs system libraries "
             "that are not installed:", *(f"  {name}" for name in sonames), ""]
    if debian:
        lines += ["Install them with one command:",
                  f"  Debian/Ubuntu:  sudo apt-get install -y {' '.join(debian)}",
                  f"  Fedora:         sudo dnf install -y {' '.join(fedora)}"]
    if unknown:
        lines.append(f"No package name is known here for {', '.join(unknown)}; your distribution's package "
                     "search (apt-file search, dnf provides) finds it.")
    lines.append("(A source checkout's scripts/setup.sh installs these as well.)")
    return "\n".join(lines)


def qt_plugin(name: str = "libqxcb.so") -> Path | None:
    """PySide6's platform plugin file, found without importing Qt (None where PySide6 is not installed)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "Qt" / "plugins" / "platforms" / name
        if path.is_file():
            return path
    return None


def run_ldd(path: Path) -> str:
    """`ldd path`'s output ("" where ldd is missing or fails: then nothing is reported)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ""
    try:
        return subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=15, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def uses_xcb(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will load the xcb plugin: asked for, or the default on a desktop without Wayland."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":", 1)[0].split(";", 1)[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def platform_problem(*, runner: Runner | None = None, plugin: Path | None = None,
                     environ: dict[str, str] | None = None, system: str = sys.platform) -> str | None:
    if not system.startswith("linux") or not uses_xcb(environ):
        return None
    plugin = plugin or qt_plugin()
    if plugin is None:
        return None
    missing = missing_sonames((runner or run_ldd)(plugin))
    return missing_libraries_message(missing) if missing else None
