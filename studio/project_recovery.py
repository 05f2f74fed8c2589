"""A project file that cannot be opened: say why, and offer the backup `save_project` keeps beside it.

`save_project` writes `project.toml` atomically and first copies the previous version to `project.toml.bak`.
When `project.toml` is damaged (a sync tool cut it short, a disk error, a hand edit gone wrong) or was written
by a newer LoRA Studio, opening it must neither fail with a traceback nor silently fall back to defaults:
the user sees what is wrong and, if the backup loads, is offered to restore it. Restoring never deletes
anything: the damaged file is kept as `project.toml.damaged-<time>` first.

Qt-free: the window calls `check_project` (or `open_project`) and shows `ProjectCheck.offer()` in a dialog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from studio.config import SECTIONS, ProjectConfig, load_project
from studio.errors import ConfigError, StudioError
from studio.fileio import atomic_write_bytes


def backup_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix(path.suffix + ".bak")


@dataclass(frozen=True)
class ProjectCheck:
    """The outcome of opening a project file, with the backup to offer when it cannot be used."""

    path: Path
    config: ProjectConfig | None  # None when the file cannot be used
    error: StudioError | None = None
    warnings: tuple[str, ...] = ()  # the file loaded but looks incomplete
    backup: Path | None = None  # a backup that loads (None: there is none, or it is damaged too)
    backup_config: ProjectConfig | None = None
    backup_saved_at: float | None = None  # modification time of the backup
    backup_problem: str = ""  # why the existing backup cannot be offered

    @property
    def ok(self) -> bool:
        return self.error is None and not self.warnings

    def offer(self) -> str:
        """One paragraph for the dialog: what is wrong and what can be done."""
        what = str(self.error) if self.error is not None else "; ".join(self.warnings)
        if self.backup is not None and self.backup_saved_at is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.backup_saved_at))
            return (f"{what}\n\nThe backup saved on {when} ({self.backup.name}) can be restored; the current file "
                    f"will be kept as {self.path.name}.damaged-<time>.")
        if self.backup_problem:
            return f"{what}\n\nThe backup cannot be used either: {self.backup_problem}"
        return f"{what}\n\nThere is no backup of this project file."


class DamagedProjectError(ConfigError):
    """`open_project` could not use the file; `check` carries the backup to offer."""

    def __init__(self, check: ProjectCheck) -> None:
        hint = ("restore the backup (it is kept beside the project as " + check.backup.name + ")"
                if check.backup is not None else (check.error.hint if check.error is not None else ""))
        super().__init__(check.offer(), hint=hint)
        self.check = check


def _completeness(path: Path) -> list[str]:
    """Signs that a file this app wrote was cut short (it still parses, so load_project accepted it)."""
    import tomllib

    from studio.config import PROJECT_FILE_LIMIT
    from studio.errors import StudioError
    from studio.safe_read import read_capped
    from studio.textfile import decode_text

    try:
        raw = read_capped(path, "project file", limit=PROJECT_FILE_LIMIT)
        data = tomllib.loads(decode_text(raw))  # a BOM and CRLF, as Notepad saves it, are fine
    except (StudioError, ValueError, RecursionError):
        return []
    if not data:
        return [f"{path.name} is empty: every setting would be a default"]
    if "format_version" not in data:  # written by hand: no promise about its shape
        return []
    problems = []
    if raw and not raw.endswith(b"\n"):
        problems.append(f"{path.name} ends in the middle of a line: it was cut short")
    missing = [s for s in SECTIONS if s not in data]
    if missing:
        problems.append(f"{path.name} lacks the section(s) {', '.join(f'[{s}]' for s in missing)} that LoRA Studio "
                        "always writes: it may have been cut short (their defaults would be used)")
    return problems


def check_project(path: str | Path) -> ProjectCheck:
    """Load `path`; on failure (or if it looks cut short) find out whether its backup can be offered."""
    path = Path(path)
    config: ProjectConfig | None = None
    error: StudioError | None = None
    try:
        config = load_project(path)
    except StudioError as exc:
        error = exc
    warnings = tuple(_completeness(path)) if config is not None else ()
    if error is None and not warnings:
        return ProjectCheck(path=path, config=config)
    backup = backup_path(path)
    if not backup.is_file():
        return ProjectCheck(path=path, config=config, error=error, warnings=warnings)
    try:
        backup_config = load_project(backup)
    except StudioError as exc:
        return ProjectCheck(path=path, config=config, error=error, warnings=warnings, backup_problem=str(exc))
    return ProjectCheck(path=path, config=config, error=error, warnings=warnings, backup=backup,
                        backup_config=backup_config, backup_saved_at=backup.stat().st_mtime)


def open_project(path: str | Path, *, accept_warnings: bool = False) -> ProjectConfig:
    """`load_project`, except that a file that cannot be used raises DamagedProjectError offering the backup.

    A file that loads but looks cut short also raises, unless `accept_warnings` (the user chose to open it as is).
    Never returns defaults in place of a file it could not read.
    """
    check = check_project(path)
    if check.error is not None or (check.warnings and not accept_warnings):
        raise DamagedProjectError(check)
    assert check.config is not None
    return check.config


def restore_backup(path: str | Path) -> Path:
    """Put `project.toml.bak` in place of `project.toml`; returns where the replaced file was kept.

    Both steps are atomic writes, so at every moment `project.toml` exists (old or restored) and nothing is
    deleted: the replaced file is copied to `project.toml.damaged-<time>` before the backup goes in.
    """
    path = Path(path)
    backup = backup_path(path)
    try:
        load_project(backup)
    except StudioError as exc:
        raise ConfigError(f"cannot restore {backup.name}: the backup is damaged too ({exc})",
                          hint="open the project file in a text editor, or start from a preset") from None
    data = backup.read_bytes()
    kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    if path.exists():
        try:
            atomic_write_bytes(kept, path.read_bytes())
        except IsADirectoryError:
            raise ConfigError(f"{path} is a folder, not a project file", hint="move it away first") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path} to keep a copy ({exc.strerror or exc})") from None
    atomic_write_bytes(path, data)
    return kept
