"""Launchers, desktop entry and the frozen entry point behave (the PyInstaller build itself is checked by
packaging/build_pyinstaller.sh, which is too slow for the test suite)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio import __version__

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


@pytest.mark.parametrize("script", ["lora-studio.sh", "LoRA-Studio.command", "install-desktop-entry.sh",
                                    "build_pyinstaller.sh"])
def test_shell_scripts_parse_and_are_executable(script):
    path = PACKAGING / script
    assert os.access(path, os.X_OK)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert b"\r\n" not in path.read_bytes()


def test_windows_launcher_has_crlf_and_pins_torch():
    data = (PACKAGING / "LoRA-Studio.bat").read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n")  # cmd.exe misreads labels in LF-only files
    text = data.decode("ascii")
    assert 'TORCH_VERSION=2.13.0' in text and "-m venv .venv" in text and "--progress-bar on" in text


@pytest.mark.parametrize("script", ["lora-studio.sh", "LoRA-Studio.command"])
def test_unix_launchers_pin_torch_and_show_progress(script):
    text = (PACKAGING / script).read_text(encoding="utf-8")
    assert "TORCH_VERSION=2.13.0" in text and "--progress-bar on" in text and "-m venv .venv" in text


def test_linux_launcher_opens_the_app_directly_once_installed(tmp_path):
    """A copy of the launcher whose .venv is 'installed' execs the app without installing anything."""
    (tmp_path / "packaging").mkdir()
    shutil.copy2(PACKAGING / "lora-studio.sh", tmp_path / "packaging")
    shutil.copy2(ROOT / "requirements.lock", tmp_path)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text('#!/bin/sh\necho "started: $*"\n', encoding="utf-8")
    fake.chmod(0o755)
    shutil.copy2(ROOT / "requirements.lock", tmp_path / ".venv" / ".lora-studio-app-installed")  # installed: this lock
    out = subprocess.run(["bash", str(tmp_path / "packaging" / "lora-studio.sh"), "my/project.toml"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "started: -m ui.app my/project.toml"
    # a changed lock (an update brought new versions) installs again, from the lock
    with open(tmp_path / "requirements.lock", "a", encoding="utf-8") as fh:
        fh.write("newpackage==1.0\n")
    out = subprocess.run(["bash", str(tmp_path / "packaging" / "lora-studio.sh")], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHON="false"))
    assert "started: -m ui.app" not in out.stdout


def test_desktop_entry_installs_for_the_user_and_uninstalls(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path))
    run = subprocess.run(["bash", str(PACKAGING / "install-desktop-entry.sh")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    entry = tmp_path / "applications" / "lora-studio.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry, encoding="utf-8")
    e = parser["Desktop Entry"]
    assert e["Name"] == "LoRA Studio" and e["Icon"] == "lora-studio" and e["Type"] == "Application"
    launcher = e["Exec"].split(" %")[0].strip('"')
    assert Path(launcher) == PACKAGING / "lora-studio.sh" and Path(launcher).is_absolute()
    for size in (16, 48, 256, 512):
        assert (tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "lora-studio.png").is_file()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "lora-studio.svg").is_file()

    run = subprocess.run(["bash", str(PACKAGING / "install-desktop-entry.sh"), "--uninstall"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and not entry.exists()
    assert not list((tmp_path / "icons").rglob("lora-studio.*"))


def test_icons_exist_at_every_size():
    from PIL import Image

    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(ROOT / "resources" / "icons" / f"lora-studio-{size}.png") as im:
            assert im.size == (size, size) and im.mode == "RGBA"
    assert (ROOT / "resources" / "icons" / "lora-studio.ico").stat().st_size > 0
    assert (ROOT / "resources" / "icons" / "lora-studio.icns").stat().st_size > 0


def test_frozen_entry_point_routes_the_command_line():
    """The PyInstaller entry answers --version through the CLI, like the installed command."""
    out = subprocess.run([sys.executable, str(PACKAGING / "frozen_main.py"), "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"lora-studio {__version__}"


def test_frozen_resource_paths_follow_meipass(tmp_path, monkeypatch):
    from studio import resources

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_path("icons", "x.png") == tmp_path / "resources" / "icons" / "x.png"
    assert resources.presets_dir() == tmp_path / "presets"


def test_spec_bundles_resources_and_presets():
    spec = (PACKAGING / "lora-studio.spec").read_text(encoding="utf-8")
    assert '"resources"), "resources")' in spec and '"presets"), "presets")' in spec
    assert "frozen_main.py" in spec
