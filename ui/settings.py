"""The app's own settings (not a project's), in `studio.paths.config_dir()` (tests override it).

- `settings.toml`: what the user chooses (`AppSettings`), plain TOML a person can fix. A damaged file or a
  wrong value must never stop the app: loading keeps what it can use and logs the rest; writes are atomic.
- `window.ini`: what the app remembers itself (geometry, docks, splitters) through `QSettings`.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from PySide6.QtCore import QSettings

from studio.codec import CodecError, from_data, to_data
from studio.fileio import atomic_write_text
from studio.paths import config_dir, default_output_dir
from studio.textfile import NotUtf8Error, decode_text

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.toml"
WINDOW_STATE_FILE = "window.ini"
THEMES = ("system", "light", "dark")
MAX_RECENT = 10


@dataclass(frozen=True)
class PreviewDefaults:
    """What a new preview (Mixer, Train sampling) starts with."""

    prompt: str = "photo of a cat, best quality"
    negative_prompt: str = "blurry, lowres"
    seed: int = 1234
    steps: int = 20
    width: int = 512
    height: int = 512


@dataclass(frozen=True)
class AppSettings:
    theme: str = "system"  # "system" follows the desktop's light/dark setting
    output_folder: str = ""  # where new projects export; "" means studio.paths.default_output_dir()
    model_folders: tuple[str, ...] = ()  # scanned for base models (.safetensors, diffusers folders)
    preview: PreviewDefaults = field(default_factory=PreviewDefaults)
    recent_projects: tuple[str, ...] = ()  # project.toml paths, newest first
    show_welcome: bool = True  # show the welcome screen when the app starts without a project
    last_folder: str = ""  # where the last file dialog was, so the next one starts there
    last_project: str = ""  # the project open when the app closed: reopened on the next start

    def __post_init__(self) -> None:
        if self.theme not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {self.theme!r}")

    def effective_output_folder(self) -> Path:
        return Path(self.output_folder).expanduser() if self.output_folder else default_output_dir()

    def with_recent(self, project: str | Path) -> "AppSettings":
        """`project` moved to the top of the recent list (absolute, no duplicates, at most MAX_RECENT)."""
        path = str(Path(project).expanduser().resolve())
        rest = [p for p in self.recent_projects if p != path]
        return replace(self, recent_projects=tuple([path, *rest][:MAX_RECENT]))

    def existing_recent(self) -> list[Path]:
        """Recent projects whose file still exists (a moved project silently drops off the list shown)."""
        return [Path(p) for p in self.recent_projects if Path(p).is_file()]


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def qsettings() -> QSettings:
    """The QSettings for window state, as an INI file beside `settings.toml` (not the Windows registry or a
    macOS plist), so one folder holds everything and one environment variable moves it."""
    return QSettings(str(config_dir() / WINDOW_STATE_FILE), QSettings.Format.IniFormat)


def _tolerant(cls: type, data: dict[str, Any], base: Any, where: str = "settings") -> Any:
    """`base` with every usable value of `data`, each read through the codec on its own; an unknown key or
    an unusable value is logged and costs only itself (the default stays)."""
    changes: dict[str, Any] = {}
    known = {f.name for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            log.warning("settings: ignoring unknown key %r", f"{where}.{key}")
            continue
        try:  # every field has a default, so a one-key table is a whole object
            changes[key] = getattr(from_data({key: value}, cls, where=where), key)
        except CodecError as exc:
            log.warning("%s; using the default", exc)
    return replace(base, **changes)


def load_settings(path: Path | None = None) -> AppSettings:
    path = path or settings_path()
    try:
        data = tomllib.loads(decode_text(path.read_bytes()))  # edited in Notepad: a BOM and CRLF are fine
    except FileNotFoundError:
        return AppSettings()
    except (OSError, NotUtf8Error, tomllib.TOMLDecodeError) as exc:
        log.warning("settings: cannot read %s (%s); starting with the defaults", path, exc)
        return AppSettings()
    # the nested table on its own, so a bad value inside it only resets that value
    preview = data.pop("preview", None)
    settings = _tolerant(AppSettings, data, AppSettings())
    if preview is not None:
        if isinstance(preview, dict):
            settings = replace(settings, preview=_tolerant(PreviewDefaults, preview, settings.preview, "settings.preview"))
        else:
            log.warning("settings: 'preview' should be a table; using the default")
    return settings


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "# LoRA Studio settings (written by the app; safe to edit while it is closed)\n"
                      + tomli_w.dumps(to_data(settings)))
    return path
