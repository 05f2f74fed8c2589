"""The user's edits, each one undoable command on the panel's stack.

Caption edits (typing in the editor, batch edits over a scope, auto-captioning) write the caption files;
undo writes them back, and `_apply_result` shows what is on disk. The choices kept in the project's
dataset.json (images excluded from training, focus points and crop boxes, per-folder repeats) swap the
whole state; `_apply_state` saves and shows it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QInputDialog

from studio.dataset.autocaption import CaptionResult, merge_caption
from studio.dataset.edits import ApplyResult, CaptionEdit, plan_batch, plan_edit
from studio.dataset.scan import repeats_for_folder
from studio.dataset.state import DatasetState, save_state
from studio.dataset.tags import TagOp, tag_frequencies
from studio.errors import StudioError
from ui.models.dataset_commands import CaptionCommand, StateCommand


class EditsMixin:
    def set_caption(self, path: Path, text: str) -> None:
        """One image's caption, as typed: an undoable edit (consecutive typing in one image merges)."""
        item = self.model.item(Path(path))
        if item is None:
            return
        edit = plan_edit(f"Edit caption of {item.path.name}", {item.path: (item.caption, text)})
        if edit.changes:
            self._push(edit, typing=True)

    def _push(self, edit: CaptionEdit, *, typing: bool = False) -> None:
        """One undoable caption edit: pushing it writes the files (a file that cannot be written is reported)."""
        self.undo_stack.push(CaptionCommand(self.store, edit, self._apply_result, typing=typing,
                                            on_error=self._background_error))

    def _apply_result(self, result: ApplyResult) -> None:
        """After any caption write or undo: show what is on disk now, and say what was reloaded."""
        self._written_at.update(dict.fromkeys(result.written, time.monotonic()))
        self.model.set_captions(result.captions)
        current = self.editor.path
        if current is not None and current in result.captions:
            disk = result.captions[current] or ""
            if current in result.reloaded:
                self.editor.show_caption(current, disk, note=f"{current.name} — changed by another program; "
                                                             "reloaded")
            elif self.editor.current_text().strip() != disk.strip():
                self.editor.show_caption(current, disk)
        if result.reloaded:
            names = ", ".join(p.name for p in list(result.reloaded)[:3]) + (" …" if len(result.reloaded) > 3 else "")
            self.banner.show_message("warning", f"{len(result.reloaded)} caption file(s) had been changed by another "
                                                f"program and were reloaded, not overwritten: {names}",
                                     "Make the edit again if you still want it.")
        self._freq_timer.start()

    def scope_paths(self, scope: str) -> list[Path]:
        return {"selection": self.selected_paths, "shown": self.shown_paths}.get(scope, self.model.paths)()

    def run_batch(self, op: TagOp, scope: str = "selection", *, by_frequency: bool = False) -> int:
        """Apply `op` to the captions in `scope`; returns how many files changed (0: nothing pushed)."""
        self.editor.flush()
        captions = {p: self.model.item(p).caption for p in self.scope_paths(scope)}
        freq = tag_frequencies(it.caption for it in self.model.items) if by_frequency else None
        edit = plan_batch(captions, op, freq)
        if not edit.changes:
            self.status_message.emit(f"{op.describe()}: no caption changes")
            return 0
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self._push(edit)
        finally:
            QApplication.restoreOverrideCursor()
        self.status_message.emit(edit.description)
        return len(edit.changes)

    def open_batch_dialog(self, operation: str = "trigger_first", tag: str = "") -> None:
        from ui.dialogs.batch_edit_dialog import BatchEditDialog

        self.editor.flush()
        selected = len(self.selected_paths())
        sizes = {"selection": selected, "shown": self.proxy.rowCount(), "all": self.model.rowCount()}

        def count(op: TagOp, scope: str) -> int:
            return len(plan_batch({p: self.model.item(p).caption for p in self.scope_paths(scope)}, op).changes)

        dialog = BatchEditDialog(self, operation=operation, tag=tag, scope="selection" if selected > 1 else "all",
                                 tags=self.tag_table.model.tags_by_frequency(), scope_sizes=sizes,
                                 count_changes=count)
        if dialog.exec():
            self.run_batch(dialog.operation_result(), dialog.chosen_scope, by_frequency=dialog.sort_by_frequency)

    def _rename_tag(self, tag: str) -> None:
        new, ok = QInputDialog.getText(self, "Rename tag", f"Rename “{tag}” in every caption to:", text=tag)
        if ok and new.strip() and new.strip() != tag:
            self.run_batch(TagOp("rename", tag, new.strip()), "all")

    def open_autocaption(self) -> None:
        from ui.dialogs.autocaption_dialog import AutoCaptionDialog

        self.editor.flush()
        images = self.selected_paths() or self.shown_paths()
        dialog = AutoCaptionDialog(images, self, settings=self.settings, jobs=self.jobs,
                                   caption_extension=self.caption_extension)
        dialog.captions_ready.connect(self.apply_generated_captions)
        dialog.exec()

    def apply_generated_captions(self, results: list[CaptionResult], mode: str) -> int:
        changes = {}
        for res in results:
            item = self.model.item(res.path)
            if item is None or not res.caption:
                continue
            if res.written:  # the worker wrote it: what is on disk now is known, so the edit records it
                self.store.remember(res.path)
            new = merge_caption(item.caption, res.caption, mode)  # type: ignore[arg-type]
            if new is not None:
                changes[item.path] = (item.caption, new)
        edit = plan_edit(f"Auto-caption ({len(changes)} images)", changes)
        if edit.changes:
            self._push(edit)
        self.status_message.emit(f"Auto-caption: {len(edit.changes)} caption(s) written")
        return len(edit.changes)

    def set_excluded(self, paths: Sequence[Path], excluded: bool) -> None:
        n = len(paths)  # none: the state is unchanged, and nothing is pushed
        self._push_state(f"{'Exclude' if excluded else 'Include'} {n} image{'s' if n != 1 else ''}",
                         self.state.with_excluded(paths, excluded))

    def _push_state(self, text: str, after: DatasetState) -> None:
        if after != self.state:
            self.undo_stack.push(StateCommand(text, self.state, after, self._apply_state))

    def _toggle_exclude(self) -> None:
        paths = self.selected_paths()
        self.set_excluded(paths, not all(self.model.item(p).excluded for p in paths))

    def _focus_picked(self, point) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            self._push_state(f"Focus point of {paths[0].name}", self.state.with_focus(paths[0], point))

    def _crop_picked(self, box) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            self._push_state(f"Crop of {paths[0].name}", self.state.with_crop(paths[0], box))

    def set_repeats(self, folder: Path, repeats: int) -> None:
        folder = Path(folder)
        from_name = repeats_for_folder(folder, self.default_repeats)[0]
        self._push_state(f"Repeats of {folder.name}: {repeats}",
                         self.state.with_repeats(folder, None if repeats == from_name else repeats))

    def _apply_state(self, state: DatasetState) -> None:
        self.state = state
        self.model.set_excluded(state.excluded)
        self.model.set_focus(state.focus, state.crops)
        for folder in {it.record.folder for it in self.model.items}:
            from_name = repeats_for_folder(folder, self.default_repeats)[0]
            self.model.set_repeats(folder, state.repeats.get(folder, from_name))
        if self.project_dir is not None:
            try:
                if self._state_damaged:
                    damaged = self.project_dir / "dataset.json"
                    if damaged.exists():
                        damaged.replace(damaged.with_suffix(".json.damaged"))
                    self._state_damaged = False
                save_state(state, self.project_dir)
            except (StudioError, OSError) as exc:
                self.banner.show_message("error", f"Cannot save the dataset choices: {exc}",
                                         getattr(exc, "hint", ""))
        self._refresh_folder_list()
        paths = self.selected_paths()
        if len(paths) == 1:
            item = self.model.item(paths[0])
            self.focus_picker.focus, self.focus_picker.crop = item.focus, item.crop
            self.focus_picker.update()
        self._show_excluded(paths)
