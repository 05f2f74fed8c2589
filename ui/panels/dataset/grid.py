"""What the grid shows and which of it is selected: thumbnail arrivals, zoom, the text / status / tag filters
and sort, and what the Caption tab shows for the selection: one image's caption, crop and focus point, or
"N images selected"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QPixmap

from ui.models.dataset_model import DatasetItem


class GridMixin:
    def _thumbnails_arrived(self, results: list) -> None:
        self.model.set_thumbnails(results)
        current = self.editor.path
        if current is not None and self.focus_picker.image_rect().isNull() \
                and any(p == current for p, _ in results):
            self._show_picture(self.model.item(current))

    def _loader_idle(self) -> None:
        """Every thumbnail is in: say so, and check the images (which decodes them all) only now."""
        self._update_footer()
        self.thumbnails_finished.emit()
        if self.check_on_load:
            self.run_check()

    def is_loading(self) -> bool:
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
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.proxy.set_sort_key(key, order)

    def selected_paths(self) -> list[Path]:
        rows = sorted(self.proxy.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.model.items[r].path for r in rows if 0 <= r < len(self.model.items)]

    def shown_paths(self) -> list[Path]:
        return [self.model.items[self.proxy.mapToSource(self.proxy.index(r, 0)).row()].path
                for r in range(self.proxy.rowCount())]

    def select_path(self, path: Path) -> None:
        row = self.model.row_of(Path(path))
        if row < 0:
            return
        index = self.proxy.mapFromSource(self.model.index(row))
        if not index.isValid():  # hidden by the filter: show everything
            self.filter_bar.status.setCurrentIndex(0)
            self.filter_bar.text.clear()
            self.proxy.set_text("")
            self._filter_tag(None)
            index = self.proxy.mapFromSource(self.model.index(row))
        self.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.grid.scrollTo(index)
        self.tabs.setCurrentIndex(0)

    def _selection_changed(self, *_args) -> None:
        self.editor.flush()
        paths = self.selected_paths()
        self._recount_soon()
        if len(paths) == 1:
            item = self.model.item(paths[0])
            self.editor.show_caption(item.path, item.caption)
            self.watcher.watch_file(self.store.sidecar(item.path))
            self._show_picture(item)
        else:
            self.watcher.watch_file(None)
            self.focus_picker.show_image(None)
            if paths:
                self.editor.show_multiple(len(paths))
            else:
                self.editor.show_caption(None, None)
        self.exclude_box.setEnabled(bool(paths))
        self._show_excluded(paths)

    def _show_excluded(self, paths: list[Path]) -> None:
        """The Exclude box and action are checked when every selected image is excluded."""
        self.exclude_box.setChecked(bool(paths) and all(self.model.item(p).excluded for p in paths))
        self.exclude_action.setChecked(self.exclude_box.isChecked())

    def _show_picture(self, item: DatasetItem) -> None:
        """The selected image in the focus picker, from its thumbnail (empty until that arrives)."""
        pix = QPixmap()
        if item.thumb:
            pix.loadFromData(item.thumb, "JPEG")
        self.focus_picker.show_image(pix, item.focus, item.crop)
