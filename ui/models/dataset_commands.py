"""QUndoCommands for the dataset panel. They hold `studio.dataset` data and call back into the panel;
the disk work (writing sidecars, saving dataset.json) is done by `studio.dataset`.

Caption commands typed into the same image merge, so one Undo takes back a whole sentence rather than
the last pause in typing. A command whose first run wrote nothing (every file had changed on disk)
marks itself obsolete and leaves the stack.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from studio.dataset.captions import CaptionStore
from studio.dataset.edits import ApplyResult, CaptionEdit, Change, PartialEditError, apply_edit
from studio.dataset.state import DatasetState

TYPING_ID = 4711


class CaptionCommand(QUndoCommand):
    """Writes an edit's captions; a write that fails (full or read-only disk) is reported through `on_error`
    and the command keeps only what was written, so undo restores exactly that."""

    def __init__(self, store: CaptionStore, edit: CaptionEdit, on_result: Callable[[ApplyResult], None], *,
                 typing: bool = False, on_error: Callable[[Exception], None]) -> None:
        super().__init__(edit.description)
        self.store, self.edit, self.typing = store, edit, typing
        self.on_result, self.on_error = on_result, on_error
        self._first = True

    def _apply(self, undo: bool) -> ApplyResult:
        try:
            return apply_edit(self.store, self.edit, undo=undo)
        except PartialEditError as exc:
            self.on_error(exc)
            return exc.result

    def redo(self) -> None:
        result = self._apply(undo=False)
        if self._first:
            self._first = False
            self.edit = self.edit.only(result.written)
            if not self.edit.changes:
                self.setObsolete(True)
        self.on_result(result)

    def undo(self) -> None:
        self.on_result(self._apply(undo=True))

    def id(self) -> int:
        return TYPING_ID if self.typing and len(self.edit.changes) == 1 else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt override
        if not isinstance(other, CaptionCommand) or other.id() != self.id() or not other.edit.changes:
            return False
        mine, theirs = self.edit.changes[0], other.edit.changes[0]
        if mine.image != theirs.image:
            return False
        self.edit = CaptionEdit(self.edit.description, (Change(mine.image, mine.old, theirs.new),))
        if mine.old == theirs.new:
            self.setObsolete(True)  # typed back to where it started: nothing to undo
        return True


class StateCommand(QUndoCommand):
    """Exclude flags, focus points, crop boxes and folder repeats: swap the whole (immutable) state."""

    def __init__(self, text: str, before: DatasetState, after: DatasetState,
                 apply: Callable[[DatasetState], None]) -> None:
        super().__init__(text)
        self.before, self.after, self.apply = before, after, apply

    def redo(self) -> None:
        self.apply(self.after)

    def undo(self) -> None:
        self.apply(self.before)
