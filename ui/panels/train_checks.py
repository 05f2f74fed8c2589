"""The Train panel's validation banner: every problem of the form listed at once, gone once they are fixed.

The form finds the problems (per field, between fields, and the disk check's it is given); this lists the
errors in the banner as the user types and, after a Start found problems with files (a missing image folder,
a damaged checkpoint), runs the disk check again on the pool thread shortly after each edit, so the banner
and the red field clear when the folder or model is fixed, not at the next Start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from studio.errors import Problem
from studio.validate import check_files, errors_of
from ui.background import run_in_background
from ui.widgets.config_form import ConfigForm, FormError, label_for
from ui.widgets.status_banner import StatusBanner

RECHECK_DELAY_MS = 400  # after the last keystroke: the disk check reads the model's header


def banner_text(errors: list[Problem]) -> tuple[str, str]:
    """(title, hint) for the banner: the one problem and its fix, or how many and each on its own line."""
    if len(errors) == 1:
        first = errors[0]
        return f"Cannot start: {first.message}", first.hint or f"Set it in the highlighted field: " \
                                                              f"{label_for(first.section, first.key)}."
    return (f"Cannot start: {len(errors)} problems (the fields are highlighted)",
            "\n".join(f"• {p.message}" for p in errors))


class FormChecks(QObject):
    def __init__(self, form: ConfigForm, banner: StatusBanner, project_file: Callable[[], Path | None],
                 is_idle: Callable[[], bool]) -> None:
        super().__init__(form)
        self._form, self._banner = form, banner
        self._project_file, self._is_idle = project_file, is_idle
        self._showing = False  # the banner shows our list (not a run's message), so it is ours to clear
        self._files_checked = False  # a disk check has run: keep its result fresh while the user edits
        self._timer = QTimer(self, singleShot=True, interval=RECHECK_DELAY_MS, timeout=self._recheck_files)
        form.problems_changed.connect(self.update_banner)
        form.changed.connect(self._edited)

    def errors(self) -> list[Problem]:
        return errors_of(self._form.problems())

    def files_checked(self, problems: list[Problem]) -> None:
        """The disk check of a Start (or of a re-check) came back."""
        self._files_checked = True
        self._form.set_file_problems(problems)

    def update_banner(self) -> None:
        if not self._is_idle() or not self._form.shown():
            return
        errors = self.errors()
        if errors:
            title, hint = banner_text(errors)
            self._banner.show_message("error", title, hint)
            self._showing = True
        elif self._showing:
            self._banner.hide()
            self._showing = False

    def forget(self) -> None:
        """Another message took the banner (the run started, failed…): leave it alone."""
        self._showing = False

    def _edited(self) -> None:
        if self._files_checked:
            self._timer.start()

    def _recheck_files(self) -> None:
        try:
            cfg = self._form.config()
        except FormError:
            return  # the field's own problem is shown; the files are checked again once it is fixed
        run_in_background(check_files, cfg, self._project_file(), on_done=self._rechecked)

    def _rechecked(self, problems: list[Problem]) -> None:
        if self._is_idle():
            self._form.set_file_problems(problems)
