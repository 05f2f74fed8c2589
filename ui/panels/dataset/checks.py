"""Image checks and the Problems tab: checks run in the background (cached by path, size and mtime), their
problems become badges in the grid and rows in the report. A check the user asked for shows the Problems tab,
so its result is seen even when nothing was found."""

from __future__ import annotations

from pathlib import Path

from studio.dataset.check import CheckReport
from studio.dataset.scan import Problem


class ChecksMixin:
    def run_check(self) -> None:
        """Check every image in the background; badges and the report update when it ends."""
        self.checker.start([it.record for it in self.model.items], self.resolution)

    def check_and_show(self) -> None:
        """The Check images action: the Problems tab comes to the front and shows progress, then the result."""
        self.tabs.setCurrentWidget(self.problem_report)
        if not self.model.items:
            self.problem_report.summary.setText("No images to check: add a folder of images first.")
            return
        self.problem_report.set_progress(0, len(self.model.items))
        self.run_check()

    def _checked(self, report: CheckReport) -> None:
        self.report = report
        by_path: dict[Path, list[Problem]] = {}
        for p in report.problems:
            by_path.setdefault(p.path, []).append(p)
        self.model.set_problems({k: tuple(v) for k, v in by_path.items()}, replace_all=True)
        self.problem_report.set_problems(list(report.problems), len(report.checks), len(self.model.items))
        self.check_finished.emit()
