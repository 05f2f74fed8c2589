"""`lora-studio gui [PROJECT]`: open the window.

The only place `studio` reaches `ui`, and only when the command runs (a lazy import), so importing
`studio` never imports Qt and the CLI works on a machine without PySide6.
"""

from __future__ import annotations

import argparse
import importlib

from studio.errors import StudioError


def register(subparsers) -> None:
    parser = subparsers.add_parser("gui", help="open the LoRA Studio window (the default command)",
                                   description="Open the LoRA Studio window, optionally with a project.")
    parser.add_argument("project", nargs="?", help="a project file (project.toml) or its folder")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo project (built in the user's data folder the first time)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        app = importlib.import_module("ui.app")
    except ImportError as exc:
        raise StudioError(f"the window needs PySide6 and pyqtgraph ({exc})",
                          hint="install them: pip install 'lora-studio[gui]'") from None
    project = getattr(args, "project", None)
    demo = ["--demo"] if getattr(args, "demo", False) else []
    return int(app.main(([project] if project else []) + demo))
