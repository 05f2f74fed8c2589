"""Where bundled files (presets, model configs, tokenizers, demo data, icons) are, also in a frozen build:
beside the executable (`sys._MEIPASS`) when frozen, else at the repository root beside `studio/`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def project_root() -> Path:
    """The folder holding the `studio` package (a source checkout's root: pyproject.toml, the lock file)."""
    return Path(__file__).resolve().parent.parent


def app_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    return Path(frozen) if frozen else project_root()


def resource_path(*parts: str) -> Path:
    return app_root().joinpath("resources", *parts)


def presets_dir() -> Path:
    return app_root() / "presets"
