"""The caption of the current image, as free text or as tag chips.

Typing is committed a moment after it stops (or when focus leaves), so the sidecar follows the editor
without a Save button; chips commit at once. The panel turns `caption_committed` into an undoable edit.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (QButtonGroup, QLabel, QPlainTextEdit, QStackedWidget, QToolButton, QVBoxLayout,
                               QWidget)

from ui.layout import fill, flat, row

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
        self.title = QLabel("No image selected",
                            textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_button = QToolButton(text="Text", checkable=True, checked=True,
                                       toolTip="Edit the caption as free text")
        self.tags_button = QToolButton(text="Tags", checkable=True,
                                       toolTip="Edit the caption as comma-separated tags")
        group = QButtonGroup(self, exclusive=True)
        for b in (self.text_button, self.tags_button):
            group.addButton(b)

        self.stack = QStackedWidget()
        # a dropped folder is for the panel, not text to insert
        self.text = _TextEdit(placeholderText="Caption (saved to the .txt beside the image as you type)",
                              acceptDrops=False, tabChangesFocus=True)
        self.text.textChanged.connect(self._typed)
        self.text.focus_lost.connect(self.flush)
        self.chips = TagChips()
        self.chips.caption_changed.connect(self._chips_changed)
        self.stack.addWidget(self.text)
        self.stack.addWidget(self.chips)
        fill(flat(QVBoxLayout(self)), row((self.title, 1), self.text_button, self.tags_button),
             (self.stack, 1))
        self.text_button.toggled.connect(lambda on: self.set_mode("text" if on else "tags"))

        self._timer = QTimer(self, singleShot=True, interval=COMMIT_DELAY_MS, timeout=self.flush)
        self.setEnabled(False)

    # -- showing ------------------------------------------------------------------------------------
    def show_caption(self, path: Path | None, caption: str | None, *, note: str = "") -> None:
        """Show an image's caption without committing anything (the panel `flush`es pending typing first)."""
        self._timer.stop()
        self.path = path
        self._shown = caption or ""
        self.setEnabled(path is not None)
        self.title.setText(note or (path.name if path is not None else "No image selected"))
        if self.text.toPlainText() != self._shown:
            with QSignalBlocker(self.text):
                self.text.setPlainText(self._shown)
        self.chips.set_caption(self._shown)

    def show_multiple(self, count: int) -> None:
        self.flush()
        self.show_caption(None, "", note=f"{count} images selected — batch operations apply to them")

    def set_mode(self, mode: str) -> None:
        self.flush()
        tags = mode == "tags"
        self.stack.setCurrentWidget(self.chips if tags else self.text)
        (self.tags_button if tags else self.text_button).setChecked(True)  # the group unchecks the other
        self.chips.set_caption(self._shown)

    @property
    def mode(self) -> str:
        return "tags" if self.stack.currentWidget() is self.chips else "text"

    def set_completions(self, tags_by_frequency: list[str]) -> None:
        self.chips.set_completions(tags_by_frequency)

    def current_text(self) -> str:
        return self.text.toPlainText() if self.mode == "text" else self.chips.caption()

    # -- committing ---------------------------------------------------------------------------------
    def _typed(self) -> None:
        if self.path is not None:
            self._timer.start()

    def _chips_changed(self, caption: str) -> None:
        with QSignalBlocker(self.text):
            self.text.setPlainText(caption)
        self._commit(caption)

    def flush(self) -> None:
        """Commit typed text now (called on focus loss, on selection change and before batch edits)."""
        self._timer.stop()
        if self.path is not None and self.mode == "text":
            self._commit(self.text.toPlainText())

    def _commit(self, text: str) -> None:
        if self.path is None or text.strip() == self._shown.strip():
            return
        self._shown = text
        self.caption_committed.emit(self.path, text)
