"""The caption of the current image, as free text or as tag chips.

Free text is committed a moment after typing stops (and when focus leaves or another image is chosen),
so the sidecar on disk follows the editor without a Save button; tag chips commit at once. The editor
only says what the user wants (`caption_committed`); the panel turns that into an undoable edit, and if
the file changed on disk meanwhile it calls `show_caption` with the disk's text instead.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (QButtonGroup, QHBoxLayout, QLabel, QPlainTextEdit, QStackedWidget, QToolButton,
                               QVBoxLayout, QWidget)

from ui.widgets.build import flat
from ui.widgets.tag_chips import TagChips

COMMIT_DELAY_MS = 700


class _TextEdit(QPlainTextEdit):
    focus_lost = Signal()

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt override
        super().focusOutEvent(event)
        self.focus_lost.emit()


class CaptionEditor(QWidget):
    caption_committed = Signal(object, str)  # (image path, new caption)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self._shown = ""  # the caption as last shown or committed: typing is compared with it
        layout = flat(QVBoxLayout(self))
        head = QHBoxLayout()
        self.title = QLabel("No image selected")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(self.title, 1)
        self.text_button = QToolButton(text="Text", checkable=True, checked=True)
        self.tags_button = QToolButton(text="Tags", checkable=True)
        self.text_button.setToolTip("Edit the caption as free text")
        self.tags_button.setToolTip("Edit the caption as comma-separated tags")
        group = QButtonGroup(self)
        group.setExclusive(True)
        for b in (self.text_button, self.tags_button):
            group.addButton(b)
            head.addWidget(b)
        layout.addLayout(head)

        self.stack = QStackedWidget()
        self.text = _TextEdit()
        self.text.setPlaceholderText("Caption (saved to the .txt beside the image as you type)")
        self.text.setAcceptDrops(False)  # a dropped folder is for the panel, not text to insert
        self.text.setTabChangesFocus(True)
        self.text.textChanged.connect(self._typed)
        self.text.focus_lost.connect(self.flush)
        self.chips = TagChips()
        self.chips.caption_changed.connect(self._chips_changed)
        self.stack.addWidget(self.text)
        self.stack.addWidget(self.chips)
        layout.addWidget(self.stack, 1)
        self.text_button.toggled.connect(lambda on: self.set_mode("text" if on else "tags"))

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COMMIT_DELAY_MS)
        self._timer.timeout.connect(self.flush)
        self.setEnabled(False)

    # -- showing ------------------------------------------------------------------------------------
    def show_caption(self, path: Path | None, caption: str | None, *, note: str = "") -> None:
        """Show an image's caption without committing anything (pending typing for the previous image is
        committed first by the panel via `flush`)."""
        self._timer.stop()
        self.path = path
        self._shown = caption or ""
        self.setEnabled(path is not None)
        self.title.setText(note or (path.name if path is not None else "No image selected"))
        self.text.blockSignals(True)
        if self.text.toPlainText() != self._shown:
            self.text.setPlainText(self._shown)
        self.text.blockSignals(False)
        self.chips.set_caption(self._shown)

    def show_multiple(self, count: int) -> None:
        self.flush()
        self.show_caption(None, "", note=f"{count} images selected — batch operations apply to them")

    def set_mode(self, mode: str) -> None:
        self.flush()
        tags = mode == "tags"
        self.stack.setCurrentWidget(self.chips if tags else self.text)
        self.tags_button.setChecked(tags)
        self.text_button.setChecked(not tags)
        self.chips.set_caption(self._shown)

    @property
    def mode(self) -> str:
        return "tags" if self.stack.currentWidget() is self.chips else "text"

    def set_completions(self, tags_by_frequency: list[str]) -> None:
        self.chips.set_completions(tags_by_frequency)

    def current_text(self) -> str:
        return self.text.toPlainText() if self.mode == "text" else self.chips.caption()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    # -- committing ---------------------------------------------------------------------------------
    def _typed(self) -> None:
        if self.path is not None:
            self._timer.start()

    def _chips_changed(self, caption: str) -> None:
        self.text.blockSignals(True)
        self.text.setPlainText(caption)
        self.text.blockSignals(False)
        self._commit(caption)

    def flush(self) -> None:
        """Commit typed text now (called on focus loss, on selection change and before batch edits)."""
        if self._timer.isActive():
            self._timer.stop()
        if self.path is not None and self.mode == "text":
            self._commit(self.text.toPlainText())

    def _commit(self, text: str) -> None:
        if self.path is None or text.strip() == self._shown.strip():
            return
        self._shown = text
        self.caption_committed.emit(self.path, text)
