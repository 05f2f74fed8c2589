"""Which images are selected, and what the Caption tab shows for them: one image's caption, crop and focus
point, or "N images selected"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QPixmap

from ui.models.dataset_model import DatasetItem


class SelectionMixin:
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
            self.focus_picker.show_image(self._big_pixmap(item), item.focus, item.crop)
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

    def _big_pixmap(self, item: DatasetItem) -> QPixmap:
        pix = QPixmap()
        if item.thumb:
            pix.loadFromData(item.thumb, "JPEG")
        return pix
