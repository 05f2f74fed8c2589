"""Image checks, and what the panel counts and says about the dataset.

Checks run in the background (cached by path, size and mtime); their problems become badges in the grid and
rows in the Problems tab, which a check the user asked for brings to the front, so its result is seen even
when nothing was found. The status line, the tag frequencies and the grid's empty hint are recounted soon
after any change to the rows (see `wiring.connect`): edits, undo, checks, folders show without a reload."""

from __future__ import annotations

from pathlib import Path

from studio.dataset.check import CheckReport
from studio.dataset.scan import Problem
from studio.dataset.tags import tag_frequencies
from ui.background import run_in_background
from ui.widgets.dataset_grid import EMPTY_HINT


class CountersMixin:
    def run_check(self) -> None:
        self.checker.start([it.record for it in self.model.items], self.resolution)

    def check_and_show(self) -> None:
        """The Check images action: the Problems tab comes to the front, shows progress, then the result."""
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

    def _recount_soon(self, *_args) -> None:
        """Recount at most every quarter second: thumbnails arrive in bursts of hundreds of row changes, and
        restarting the timer on each would hold the status line still until the last one."""
        if not self._footer_timer.isActive():
            self._footer_timer.start()

    def _update_footer(self) -> None:
        self._update_empty()
        total = self.model.rowCount()
        if total == 0:
            self.footer.setText("Reading folders…" if self.loader.scanning else "No images")
            return
        items = self.model.items
        selected = len(self.grid.selectionModel().selectedIndexes())
        parts = [f"{total} images", f"{self.proxy.rowCount()} shown", f"{selected} selected",
                 f"{sum(1 for it in items if it.trains)} for training",
                 f"{sum(1 for it in items if not it.caption)} without caption"]
        if self.report is not None:
            parts.append(f"{sum(1 for it in items if it.problems)} with problems")
        ready = self.thumbnails_ready()
        if ready < total:
            parts.append(f"thumbnails {ready}/{total}")
        self.footer.setText(" · ".join(parts))

    def _update_empty(self) -> None:
        """The grid's hint: how to fill an empty dataset, or why a filled one shows nothing."""
        if self.proxy.rowCount():
            hint = ""
        elif self.loader.scanning:
            hint = "Reading folders…"
        elif self.model.rowCount():
            hint = "No image matches the filter."
        elif self.roots:
            hint = "No images in the dataset's folders.\n\n" + EMPTY_HINT
        else:
            hint = EMPTY_HINT
        self.grid.set_empty_hint(hint)

    def _refresh_frequencies(self) -> None:
        """Count tags on a pool thread (tens of milliseconds at 10,000 captions) and show the result."""
        captions = [it.caption for it in self.model.items]
        generation = self._generation
        run_in_background(tag_frequencies, captions,
                          on_done=lambda counts: self._show_frequencies(counts, generation))

    def _show_frequencies(self, counts, generation: int) -> None:
        if generation != self._generation:
            return
        self.tag_table.set_frequencies(counts)
        self.editor.set_completions(self.tag_table.model.tags_by_frequency())
