"""The dataset as a Qt list model (one row per image) and a proxy that filters and sorts it.

Rows hold plain data: the scan's record, the caption now on disk, the problems the check found, the
user's exclude flag and the thumbnail as encoded JPEG bytes. Pixmaps are decoded only for rows being
painted and kept in a small LRU, so 10,000 rows cost tens of megabytes, not gigabytes. Asking for a
row's picture (DecorationRole) is also what asks the thumbnail pool for it — Qt only asks for rows it
paints, so visible rows are made first without the view having to say which rows are visible.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QPixmap

from studio.dataset.scan import ImageRecord, Problem
from studio.dataset.tags import has_tag, split_tags

PIXMAP_CACHE = 800  # decoded pixmaps kept: a few screens' worth at the smallest zoom


class Role(enum.IntEnum):
    PATH = Qt.ItemDataRole.UserRole + 1
    CAPTION = enum.auto()
    HAS_CAPTION = enum.auto()
    EXCLUDED = enum.auto()  # the user's flag
    INVALID = enum.auto()  # a problem that excludes it from training
    PROBLEMS = enum.auto()
    THUMB_READY = enum.auto()
    THUMB_ERROR = enum.auto()
    ITEM = enum.auto()
    FOCUS = enum.auto()


@dataclass
class DatasetItem:
    record: ImageRecord
    caption: str | None  # None: no sidecar
    excluded: bool = False
    problems: tuple[Problem, ...] = ()
    thumb: bytes = b""
    thumb_size: tuple[int, int] = (0, 0)
    thumb_error: str = ""
    focus: tuple[float, float] | None = None
    crop: tuple[float, float, float, float] | None = None
    extra: dict = field(default_factory=dict)

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

    # -- Qt interface -------------------------------------------------------------------------------
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
        if role == Role.PATH:
            return str(item.path)
        if role == Role.CAPTION:
            return item.caption or ""
        if role == Role.HAS_CAPTION:
            return bool(item.caption)
        if role == Role.EXCLUDED:
            return item.excluded
        if role == Role.INVALID:
            return item.invalid
        if role == Role.PROBLEMS:
            return item.problems
        if role == Role.THUMB_READY:
            return bool(item.thumb)
        if role == Role.THUMB_ERROR:
            return item.thumb_error
        if role == Role.ITEM:
            return item
        if role == Role.FOCUS:
            return item.focus
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

    # -- changes ------------------------------------------------------------------------------------
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
        for i, it in enumerate(fresh):
            self._rows[it.path] = start + i
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

    def _changed_rows(self, rows: Iterable[int], roles: list[int] | None = None) -> None:
        rows = sorted(set(rows))
        if not rows:
            return
        # one signal per run of consecutive rows: a batch of 10,000 is a handful of signals
        start = prev = rows[0]
        for r in rows[1:] + [None]:
            if r is not None and r == prev + 1:
                prev = r
                continue
            self.dataChanged.emit(self.index(start), self.index(prev), roles or [])
            if r is not None:
                start = prev = r

    def set_thumbnails(self, results: Iterable[tuple[Path, object]]) -> int:
        """Store finished thumbnails (from the pool); returns how many rows got one.

        Only rows that were painted while waiting get a dataChanged (one per row: a range makes the view
        repaint its whole viewport). Rows made in the background are simply there when scrolled to —
        the delegate reads the item itself — so 10,000 arrivals cost no repaints.
        """
        count = 0
        repaint = []
        for path, thumb in results:
            row = self._rows.get(path)
            if row is None:
                continue
            item = self.items[row]
            if not item.thumb and not item.thumb_error:
                self.thumbs_ready += 1
            item.thumb = thumb.data
            item.thumb_size = (thumb.width, thumb.height)
            item.thumb_error = thumb.error
            count += 1
            if path in self._waiting:
                self._waiting.discard(path)
                repaint.append(row)
        roles = [Qt.ItemDataRole.DecorationRole, Role.THUMB_READY]
        for row in repaint:
            index = self.index(row)
            self.dataChanged.emit(index, index, roles)
        return count

    def set_captions(self, captions: dict[Path, str | None]) -> None:
        rows = []
        for path, text in captions.items():
            row = self._rows.get(Path(path))
            if row is not None and self.items[row].caption != text:
                self.items[row].caption = text
                rows.append(row)
        self._changed_rows(rows, [Role.CAPTION, Role.HAS_CAPTION, Qt.ItemDataRole.ToolTipRole])

    def set_problems(self, problems: dict[Path, tuple[Problem, ...]], *, replace_all: bool = False) -> None:
        rows = []
        for i, item in enumerate(self.items):
            if item.path in problems:
                new = problems[item.path]
            elif replace_all:
                new = ()
            else:
                continue
            if item.problems != new:
                item.problems = new
                rows.append(i)
        self._changed_rows(rows, [Role.PROBLEMS, Role.INVALID, Qt.ItemDataRole.ToolTipRole])

    def set_excluded(self, excluded: frozenset[Path] | set[Path]) -> None:
        rows = []
        for i, item in enumerate(self.items):
            flag = item.path in excluded
            if item.excluded != flag:
                item.excluded = flag
                rows.append(i)
        self._changed_rows(rows, [Role.EXCLUDED])

    def set_focus(self, focus: dict[Path, tuple[float, float]], crops: dict) -> None:
        rows = []
        for i, item in enumerate(self.items):
            f, c = focus.get(item.path), crops.get(item.path)
            if (item.focus, item.crop) != (f, c):
                item.focus, item.crop = f, c
                rows.append(i)
        self._changed_rows(rows, [Role.FOCUS])

    def set_repeats(self, folder: Path, repeats: int) -> None:
        from dataclasses import replace

        rows = []
        for i, item in enumerate(self.items):
            if item.record.folder == folder and item.record.repeats != repeats:
                item.record = replace(item.record, repeats=repeats)
                rows.append(i)
        self._changed_rows(rows, [Qt.ItemDataRole.ToolTipRole])


STATUS_FILTERS = ("All images", "No caption", "Problems", "Excluded", "Training")
SORT_KEYS = ("Folder and name", "Name", "Caption length", "Number of tags", "Modified")


class DatasetFilterProxy(QSortFilterProxyModel):
    """Filter by text (caption or file name), by tags (all must be present) and by status; sort by a key."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._text = ""
        self._tags: tuple[str, ...] = ()
        self._status = "All images"
        self._sort_key = SORT_KEYS[0]
        self._keys: list = []
        self.setDynamicSortFilter(False)  # re-sorting while the user types a caption would move the image

    def set_text(self, text: str) -> None:
        self._text = text.strip().casefold()
        self.invalidateFilter()

    def set_tags(self, tags: Iterable[str]) -> None:
        self._tags = tuple(t for t in tags if t.strip())
        self.invalidateFilter()

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    def set_status(self, status: str) -> None:
        self._status = status
        self.invalidateFilter()

    def set_sort_key(self, key: str, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort once by `key` (keys computed up front: lessThan runs ~n log n times). The first key is the
        scan's own order, which costs nothing at 10,000 images."""
        self._sort_key = key
        if key == SORT_KEYS[0]:
            self._keys = []
            self.sort(-1)
            return
        self._keys = [self._key(it) for it in self.sourceModel().items]
        self.sort(0, order)

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802 - Qt override
        model = self.sourceModel()
        item: DatasetItem = model.items[source_row]
        if self._status == "No caption" and item.caption:
            return False
        if self._status == "Problems" and not item.problems:
            return False
        if self._status == "Excluded" and item.trains:
            return False
        if self._status == "Training" and not item.trains:
            return False
        if self._text and self._text not in (item.caption or "").casefold() \
                and self._text not in item.path.name.casefold():
            return False
        return all(has_tag(item.caption, t) for t in self._tags)

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt override
        if len(self._keys) != self.sourceModel().rowCount():
            self._keys = [self._key(it) for it in self.sourceModel().items]
        return self._keys[left.row()] < self._keys[right.row()]

    def _key(self, item: DatasetItem):
        name = item.path.name.casefold()
        if self._sort_key == "Folder":
            return (str(item.record.folder).casefold(), name)
        if self._sort_key == "Caption length":
            return (len(item.caption or ""), name)
        if self._sort_key == "Number of tags":
            return (len(split_tags(item.caption)), name)
        if self._sort_key == "Modified":
            return (item.record.mtime_ns, name)
        return (name, str(item.path))
