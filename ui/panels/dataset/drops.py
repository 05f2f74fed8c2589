"""Drops on the Dataset panel, sorted by what they are (`studio.dataset.drop_kinds`): image folders and loose
images join the dataset, a base model goes to the Train panel's model field and LoRAs to the mixer (through
the panel's `model_dropped` / `loras_dropped` signals, which the main window connects), and the status line
says in one sentence what went where. While files are dragged over the panel the grid is highlighted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent

from studio.dataset.drop_kinds import DropPlan, classify
from studio.dataset.importer import import_copies
from ui.background import run_in_background
from ui.panels.dataset.folders import IMPORT_FOLDER


def _local_paths(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
    mime = event.mimeData()
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class DropsMixin:
    def add_paths(self, paths: Sequence[str | Path]) -> DropPlan:
        """Dropped or chosen paths, each sent where it belongs. Folders are referenced in place; single images
        are copied into the project (or, without a project folder, their folder is added)."""
        plan = classify(paths)
        if plan.folders:
            self.add_folders(list(plan.folders))
        if plan.images:
            self._add_loose_images(list(plan.images))
        if plan.model is not None:
            self.model_dropped.emit(str(plan.model))
        if plan.loras:
            self.loras_dropped.emit([str(p) for p in plan.loras])
        self.drop_note = plan.note()
        self.status_message.emit(self.drop_note)
        return plan

    def _add_loose_images(self, images: list[Path]) -> None:
        if self.project_dir is None:
            self.add_folders(sorted({p.parent for p in images}))
            return
        dest = self.project_dir / IMPORT_FOLDER / "imported"
        run_in_background(import_copies, images, dest, self.caption_extension,
                          on_done=lambda _: self._imported(dest, len(images)), on_error=self._background_error)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if _local_paths(event):
            event.acceptProposedAction()
            self.grid.set_drop_highlight(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self.grid.set_drop_highlight(False)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.grid.set_drop_highlight(False)
        paths = _local_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)
