"""Starting the application: `main(argv)` is the GUI's entry point (`lora-studio gui [PROJECT]`).

Missing display libraries are named before Qt would stop without a word (`ui.qt_libraries`), and a crash
while the window is built, or later in a slot, shows a dialog with the traceback instead of a silent exit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

APP_NAME = "LoRA Studio"


def create_application() -> "QApplication":  # noqa: F821 - PySide6 is imported lazily
    from PySide6.QtWidgets import QApplication

    from studio import __version__

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "lora-studio"])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setApplicationDisplayName(APP_NAME)
    return app


def show_error_dialog(title: str, message: str, details: str, parent=None) -> None:
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText("The details below help whoever fixes it; copy them into a bug report.")
    box.setDetailedText(details)
    box.exec()


def install_excepthook() -> None:
    """Unhandled exceptions in slots: print, then show once per kind; the window stays usable."""
    shown: set[str] = set()
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        previous(exc_type, exc, tb)
        key = f"{exc_type.__name__}: {exc}"
        if key in shown:
            return
        shown.add(key)
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        show_error_dialog(APP_NAME, f"Something went wrong: {key}", details)

    sys.excepthook = hook


def show_install_problems(parent) -> None:
    """Library versions that are untested or known not to work together: a dialog, never a traceback later."""
    import os

    from studio.install_check import SKIP_ENV, check_install
    from ui.dialogs.install_problems import install_problem_box

    if os.environ.get(SKIP_ENV) == "1" or getattr(sys, "frozen", False):
        return
    box = install_problem_box(check_install(), parent)
    if box is not None:
        box.open()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lora-studio gui", description="Open the LoRA Studio window.")
    parser.add_argument("project", nargs="?", help="a project file (project.toml) or its folder")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo project (built in the user's data folder the first time)")
    return parser.parse_args(list(argv))


def project_path(value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path / "project.toml" if path.is_dir() else path


def open_main_window(project: Path | None, *, start_worker: bool = True):
    """The main window with the desktop shell around it (theme, welcome, settings, menus, notifications);
    the caller shows the window, then calls `shell.start(...)`."""
    from ui.desktop import DesktopShell, prepare_application
    from ui.main_window import MainWindow
    from ui.settings import load_settings, qsettings

    settings = load_settings()
    prepare_application(settings)  # the theme before any widget exists: charts read the palette once
    window = MainWindow(project_file=project, settings=qsettings(), start_worker=start_worker)
    return window, DesktopShell(window, settings)


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()
    from PySide6.QtCore import QCoreApplication

    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if QCoreApplication.instance() is None:  # the display plugin is still to be loaded
        from ui.qt_libraries import platform_problem

        problem = platform_problem()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
    app = create_application()
    try:
        window, shell = open_main_window(project_path(args.project))
    except Exception:
        details = traceback.format_exc()
        print(details, file=sys.stderr)
        show_error_dialog(APP_NAME, "LoRA Studio could not start.", details)
        return 1
    install_excepthook()
    window.show()
    shell.start(project_path(args.project), demo=args.demo)
    show_install_problems(window)
    code = app.exec()
    if window.worker.running:  # the window has gone: never leave its worker behind (it runs in its own session)
        window.worker.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
