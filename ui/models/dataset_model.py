"""The dataset as a Qt list model (one row per image) and a proxy that filters and sorts it.

Rows hold plain data (the thumbnail as encoded JPEG bytes); pixmaps are decoded only for rows being
painted and kept in a small LRU, so 10,000 rows cost tens of megabytes, not gigabytes. Asking for a
row's picture is also what asks the thumbnail pool for it: Qt only paints visible rows, so they are made
first without the view having to say which rows are visible.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QPixmap

from studio.dataset.scan import ImageRecord, Problem
from studio.dataset.tags import has_tag, split_tags

PIXMAP_CACHE = 800  # decoded pixmaps kept: a few screens' worth at the smallest zoom


@dataclass
class DatasetItem:
    record: ImageRecord
    caption: str | None  # None: no sidecar
    excluded: bool = False  # the user's flag
    problems: tuple[Problem, ...] = ()
    thumb: bytes = b""
    thumb_error: str = ""
    focus: tuple[float, float] | None = None
    crop: tuple[float, float, float, float] | None = None

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def invalid(self) -> bool:
        return any(p.excluded for p in self.problems)

    @property
    def trains(self) -> bool:
        return not self.excluded and not self.invalid


class DatasetModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[DatasetItem] = []
        self._rows: dict[Path, int] = {}
        self._pixmaps: OrderedDict[tuple[int, int], QPixmap] = OrderedDict()
        self.thumb_side = 128
        self.thumbs_ready = 0  # rows with a thumbnail or a reason why not (kept, not counted per paint)
        self._waiting: set[Path] = set()  # painted without a thumbnail: repaint these when theirs arrives
        self.request_thumbnail: Callable[[DatasetItem], None] | None = None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.path.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap(index.row())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(item)
        return None

    def _tooltip(self, item: DatasetItem) -> str:
        lines = [str(item.path)]
        if item.record.repeats != 1:
            lines.append(f"repeats: {item.record.repeats}")
        lines.append(item.caption if item.caption else "(no caption)")
        if item.excluded:
            lines.append("excluded from training")
        lines += [f"{'✗' if p.excluded else '•'} {p.message}" for p in item.problems]
        return "\n".join(lines)

    def pixmap(self, row: int) -> QPixmap | None:
        """The row's thumbnail scaled to the zoom level (decoded on first paint, then kept in an LRU);
        None while it is being made, which is also what asks the pool for it."""
        item = self.items[row]
        if not item.thumb:
            if not item.thumb_error and self.request_thumbnail is not None and item.path not in self._waiting:
                self._waiting.add(item.path)
                self.request_thumbnail(item)
            return None
        key = (row, id(item.thumb))
        pix = self._pixmaps.get(key)
        if pix is not None:
            self._pixmaps.move_to_end(key)
            return pix
        pix = QPixmap()
        if not pix.loadFromData(item.thumb, "JPEG"):
            return None
        side = self.thumb_side
        if max(pix.width(), pix.height()) > side:
            pix = pix.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
        self._pixmaps[key] = pix
        if len(self._pixmaps) > PIXMAP_CACHE:
            self._pixmaps.popitem(last=False)
        return pix

    def set_items(self, items: Sequence[DatasetItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self._rows = {it.path: i for i, it in enumerate(self.items)}
        self.thumbs_ready = sum(1 for it in self.items if it.thumb or it.thumb_error)
        self._pixmaps.clear()
        self._waiting.clear()
        self.endResetModel()

    def append_items(self, items: Sequence[DatasetItem]) -> None:
        fresh = [it for it in items if it.path not in self._rows]
        if not fresh:
            return
        start = len(self.items)
        self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
        self._rows.update((it.path, start + i) for i, it in enumerate(fresh))
        self.items.extend(fresh)
        self.thumbs_ready += sum(1 for it in fresh if it.thumb or it.thumb_error)
        self.endInsertRows()

    def remove_folder(self, folder: Path) -> None:
        """Drop every row whose image lies in `folder` or its kohya subfolders."""
        keep = [it for it in self.items if it.record.folder != folder and it.record.folder.parent != folder]
        if len(keep) != len(self.items):
            self.set_items(keep)

    def set_thumb_side(self, side: int) -> None:
        self.thumb_side = side
        self._pixmaps.clear()

    def row_of(self, path: Path) -> int:
        return self._rows.get(Path(path), -1)

    def item(self, path: Path) -> DatasetItem | None:
        row = self.row_of(path)
        return self.items[row] if row >= 0 else None

    def paths(self) -> list[Path]:
        return [it.path for it in self.items]

    def _changed_rows(self, rows: Iterable[int]) -> None:
        # one signal per run of consecutive rows: a batch of 10,000 is a handful of signals
        for _, run in itertools.groupby(enumerate(sorted(set(rows))), lambda pair: pair[1] - pair[0]):
            run = [row for _, row in run]
            self.dataChanged.emit(self.index(run[0]), self.index(run[-1]), [])

    def _set_each(self, attr: str, value_of: Callable[[DatasetItem], object]) -> None:
        rows = []
        for i, item in enumerate(self.items):
            value = value_of(item)
            if getattr(item, attr) != value:
                setattr(item, attr, value)
                rows.append(i)
        self._changed_rows(rows)

    def set_thumbnails(self, results: Iterable[tuple[Path, object]]) -> None:
        """Only rows that were painted while waiting get a dataChanged (one per row: a range makes the view
        repaint its whole viewport). Rows made in the background are simply there when scrolled to —
        the delegate reads the item itself — so 10,000 arrivals cost no repaints."""
        repaint = []
        for path, thumb in results:
            row = self._rows.get(path)
            if row is None:
                continue
            item = self.items[row]
            if not item.thumb and not item.thumb_error:
                self.thumbs_ready += 1
            item.thumb = thumb.data
            item.thumb_error = thumb.error
            if path in self._waiting:
                self._waiting.discard(path)
                repaint.append(row)
        for row in repaint:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def set_captions(self, captions: dict[Path, str | None]) -> None:
        rows = []
        for path, text in captions.items():
            row = self._rows.get(Path(path))
            if row is not None and self.items[row].caption != text:
                self.items[row].caption = text
                rows.append(row)
        self._changed_rows(rows)

    def set_problems(self, problems: dict[Path, tuple[Problem, ...]], *, replace_all: bool = False) -> None:
        self._set_each("problems", lambda it: problems.get(it.path, () if replace_all else it.problems))

    def set_excluded(self, excluded: frozenset[Path] | set[Path]) -> None:
        self._set_each("excluded", lambda it: it.path in excluded)

    def set_focus(self, focus: dict[Path, tuple[float, float]], crops: dict) -> None:
        self._set_each("focus", lambda it: focus.get(it.path))
        self._set_each("crop", lambda it: crops.get(it.path))

    def set_repeats(self, folder: Path, repeats: int) -> None:
        self._set_each("record", lambda it: replace(it.record, repeats=repeats) if it.record.folder == folder
                       else it.record)


STATUS_FILTERS: dict[str, Callable[[DatasetItem], bool]] = {  # the filter bar's choices, and what each shows
    "All images": lambda it: True,
    "No caption": lambda it: not it.caption,
    "Problems": lambda it: bool(it.problems),
    "Excluded": lambda it: not it.trains,
    "Training": lambda it: it.trains,
}
SORT_KEYS: dict[str, Callable[[DatasetItem], tuple] | None] = {  # None: the scan's own order
    "Folder and name": None,
    "Name": lambda it: (it.path.name.casefold(), str(it.path)),
    "Caption length": lambda it: (len(it.caption or ""), it.path.name.casefold()),
    "Number of tags": lambda it: (len(split_tags(it.caption)), it.path.name.casefold()),
    "Modified": lambda it: (it.record.mtime_ns, it.path.name.casefold()),
}


class DatasetFilterProxy(QSortFilterProxyModel):
    """Filter by text (caption or file name), by tags (all must be present) and by status; sort by a key."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._text = ""
        self._tags: tuple[str, ...] = ()
        self._status = "All images"
        self._sort_key = "Folder and name"
        self._keys: list = []
        self.setDynamicSortFilter(False)  # re-sorting while the user types a caption would move the image

    def set_text(self, text: str) -> None:
        self._text = text.strip().casefold()
        self.invalidateFilter()

    def set_tags(self, tags: Iterable[str]) -> None:
        self._tags = tuple(t for t in tags if t.strip())
        self.invalidateFilter()

    def set_status(self, status: str) -> None:
        self._status = status
        self.invalidateFilter()

    def set_sort_key(self, key: str, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort once by `key` (keys computed up front: lessThan runs ~n log n times). The first key is the
        scan's own order, which costs nothing at 10,000 images."""
        self._sort_key = key
        if SORT_KEYS[key] is None:
            self._keys = []
            self.sort(-1)
            return
        self._keys = [SORT_KEYS[key](it) for it in self.sourceModel().items]
        self.sort(0, order)

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802 - Qt override
        item: DatasetItem = self.sourceModel().items[source_row]
        if not STATUS_FILTERS[self._status](item):
            return False
        if self._text and self._text not in (item.caption or "").casefold() \
                and self._text not in item.path.name.casefold():
            return False
        return all(has_tag(item.caption, t) for t in self._tags)

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt override
        if len(self._keys) != self.sourceModel().rowCount():
            self._keys = [SORT_KEYS[self._sort_key](it) for it in self.sourceModel().items]
        return self._keys[left.row()] < self._keys[right.row()]
