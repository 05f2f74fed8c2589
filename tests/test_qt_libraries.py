"""First launch without Qt's system libraries (issue 18): the app names the packages and the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ui.qt_libraries import (PACKAGES, missing_libraries_message, missing_sonames, packages_for, platform_problem,
                             uses_xcb)

ROOT = Path(__file__).resolve().parent.parent

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd5a5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f3c1a000000)
\tlibxcb-cursor.so.0 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f3c19f00000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-cursor.so.0 => not found
\tlibfoo-unknown.so.3 => not found
"""


def test_missing_sonames_from_ldd_output():
    assert missing_sonames(LDD_OUTPUT) == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libxcb-icccm.so.4",
                                           "libfoo-unknown.so.3"]
    assert missing_sonames("\tlibGL.so.1 => /lib/libGL.so.1 (0x1)\n") == []


def test_packages_for_debian_and_fedora():
    debian, fedora, unknown = packages_for(missing_sonames(LDD_OUTPUT))
    assert debian == ["libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4"]
    assert fedora == ["xcb-util-cursor", "libxkbcommon-x11", "xcb-util-wm"]
    assert unknown == ["libfoo-unknown.so.3"]


def test_message_lists_packages_and_one_command_each():
    message = missing_libraries_message(missing_sonames(LDD_OUTPUT))
    assert "libxcb-cursor.so.0" in message and "libfoo-unknown.so.3" in message
    apt = [line for line in message.splitlines() if "apt-get install" in line]
    dnf = [line for line in message.splitlines() if "dnf install" in line]
    assert apt == ["  Debian/Ubuntu:  sudo apt-get install -y libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4"]
    assert dnf == ["  Fedora:         sudo dnf install -y xcb-util-cursor libxkbcommon-x11 xcb-util-wm"]


def test_every_package_setup_sh_installs_is_known():
    """The map knows the Debian list of scripts/setup.sh (its one source of the package names)."""
    text = (ROOT / "scripts" / "setup.sh").read_text()
    block = text.split('pkgs="', 1)[1].split('"', 1)[0].replace("\\\n", " ")
    debian_known = {deb for deb, _ in PACKAGES.values()}
    assert set(block.split()) <= debian_known


def test_platform_problem_runs_ldd_on_the_plugin_only_where_xcb_is_used(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    seen: list[Path] = []

    def runner(path: Path) -> str:
        seen.append(path)
        return LDD_OUTPUT

    x11 = {"DISPLAY": ":0"}
    message = platform_problem(runner=runner, plugin=plugin, environ=x11, system="linux")
    assert seen == [plugin] and message is not None and "sudo apt-get install -y libxcb-cursor0" in message
    assert platform_problem(runner=lambda p: "\tlibGL.so.1 => /lib/libGL.so.1\n", plugin=plugin, environ=x11,
                            system="linux") is None
    assert platform_problem(runner=runner, plugin=plugin, environ=x11, system="win32") is None
    assert platform_problem(runner=runner, plugin=plugin, environ={"QT_QPA_PLATFORM": "offscreen"},
                            system="linux") is None
    assert uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"})
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0"})


def test_the_app_prints_the_message_and_exits_instead_of_qt_aborting(tmp_path):
    """A real start with ldd answering "not found": the message on stderr, exit status 1, no window."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import ui.qt_libraries as q\n"
        f"q.run_ldd = lambda path: {LDD_OUTPUT!r}\n"
        "from ui.app import main\n"
        "sys.exit(main([]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":99", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True,
                            env=env, timeout=120)
    if not sys.platform.startswith("linux"):
        return
    assert result.returncode == 1, result.stderr
    assert "sudo apt-get install -y libxcb-cursor0" in result.stderr
    assert "sudo dnf install -y xcb-util-cursor" in result.stderr
    assert "no Qt platform plugin could be initialized" not in result.stderr  # Qt never got that far
