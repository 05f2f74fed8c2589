"""Thumbnails and what the grid shows: thumbnail arrivals, zoom, and the text / status / tag filters and sort."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ui.models.dataset_model import DatasetItem


class ViewMixin:
    def _request_urgent(self, item: DatasetItem) -> None:
        self.loader.request(item.record, urgent=True)

    def _thumbnails_arrived(self, results: list) -> None:
        self.model.set_thumbnails(results)
        current = self.editor.path
        if current is not None and self.focus_picker.image_rect().isNull() and any(p == current for p, _ in results):
            item = self.model.item(current)
            self.focus_picker.show_image(self._big_pixmap(item), item.focus, item.crop)

    def _loader_idle(self) -> None:
        """Every thumbnail is in: say so, and check the images (which decodes them all) only now."""
        self._update_footer()
        self.thumbnails_finished.emit()
        if self.check_on_load:
            self.run_check()

    def is_loading(self) -> bool:
        """A folder scan is still under way (rows are still being added)."""
        return self.loader.scanning

    def thumbnails_ready(self) -> int:
        """Rows whose thumbnail is in memory (or known to be impossible)."""
        return self.model.thumbs_ready

    def set_thumb_side(self, side: int) -> None:
        self.grid.set_side(side)
        self.model.set_thumb_side(self.grid.delegate.side)
        self.settings.setValue("datasetPanel/thumbSize", self.grid.delegate.side)
        self.grid.viewport().update()

    def _filter_tag(self, tag: str | None) -> None:
        self.proxy.set_tags([tag] if tag else [])
        if tag:
            self.filter_bar.show_tag(tag)
        else:
            self.filter_bar.tag.hide()

    def _sort(self, key: str, descending: bool) -> None:
        self.proxy.set_sort_key(key, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder)
