"""The per-user folders LoRA Studio writes to: settings (config), the demo project (data), default outputs.

Each follows the platform's convention (platformdirs) and can be moved with an environment variable: tests
point them at temporary folders, and a portable install can keep everything beside itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lora-studio"
CONFIG_ENV = "LORA_STUDIO_CONFIG_DIR"
DATA_ENV = "LORA_STUDIO_DATA_DIR"


def _override(env: str) -> Path | None:
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Where `settings.toml` lives (not created here: reading settings must not write anything)."""
    return _override(CONFIG_ENV) or Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))


def data_dir() -> Path:
    """Per-user data: the demo project and anything the app keeps between sessions that is not a setting."""
    return _override(DATA_ENV) or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def demo_project_dir() -> Path:
    """Where the welcome screen's "Open the demo project" builds the demo."""
    return data_dir() / "demo-project"


def default_output_dir() -> Path:
    """The suggested folder for exported LoRAs: visible in the user's documents, not hidden in app data."""
    return Path(platformdirs.user_documents_dir()) / "LoRA Studio"
