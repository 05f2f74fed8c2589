"""What the panel counts and says about the dataset: the status line under the grid (images, shown,
selected, for training, without caption, problems, thumbnails), the tag frequencies, and the grid's
empty hint. Every change to the rows, shown or not, recounts soon after (see `wiring._connect_counters`),
so caption edits, batch edits, undo, checks and folder changes all show without a reload."""

from __future__ import annotations

from studio.dataset.tags import tag_frequencies
from ui.background import run_in_background
from ui.widgets.dataset_grid import EMPTY_HINT


class CountersMixin:
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
        training = sum(1 for it in items if it.trains)
        uncaptioned = sum(1 for it in items if not it.caption)
        selected = len(self.grid.selectionModel().selectedIndexes())
        parts = [f"{total} images", f"{self.proxy.rowCount()} shown", f"{selected} selected",
                 f"{training} for training", f"{uncaptioned} without caption"]
        if self.report is not None:
            with_problems = sum(1 for it in items if it.problems)
            parts.append(f"{with_problems} with problems")
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
