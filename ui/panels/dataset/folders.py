"""The dataset's folders: a project's, added, imported and removed; scanned into the grid chunk by chunk.

Drops are sorted by what they are (`studio.dataset.drop_kinds`): image folders and loose images join the
dataset, a base model goes to the Train panel and LoRAs to the mixer (the `model_dropped` / `loras_dropped`
signals), and the status line says in one sentence what went where. A watched folder or caption file that
another program changed is scanned again, and the grid, the captions and the editor catch up (an edit made
here meanwhile wins)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from studio.dataset.captions import CaptionStore
from studio.dataset.drop_kinds import classify
from studio.dataset.importer import import_copies, import_folder
from studio.dataset.scan import ImageRecord, dataset_folders, repeats_for_folder, scan_folder
from studio.dataset.state import DatasetState, load_state
from studio.errors import StudioError
from ui.background import run_in_background
from ui.models.dataset_model import DatasetItem

IMPORT_FOLDER = "images"  # where "import a copy" puts images, inside the project folder


def _local_paths(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
    mime = event.mimeData()
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class FoldersMixin:
    def set_project(self, folders: Sequence[str], project_dir: Path | None, *, resolution: int = 512,
                    caption_extension: str = ".txt", default_repeats: int = 1) -> None:
        """Show the dataset of a project (folders as written in its file, relative to `project_dir`)."""
        self.editor.flush()
        self.project_dir = Path(project_dir).resolve() if project_dir else None
        self.resolution = resolution
        self.default_repeats = default_repeats
        self.caption_extension = caption_extension
        self.store = CaptionStore(self.caption_extension)
        self.undo_stack.clear()
        self.banner.hide()
        self.state = DatasetState()
        if self.project_dir is not None:
            try:
                self.state = load_state(self.project_dir)
            except StudioError as exc:
                self._state_damaged = True
                self.banner.show_message("error", str(exc), exc.hint)
        base = self.project_dir or Path()  # a relative folder is the project's (an absolute one stays)
        self.roots = list(dict.fromkeys((base / Path(f).expanduser()).resolve() for f in folders))
        self.report = None
        self.checker.cancel()
        self.problem_report.set_problems([], 0, 0)
        self.model.set_items([])
        self.loader.reset()
        self.watcher.clear()
        self._load(list(self.roots), replace=True)

    def set_resolution(self, resolution: int) -> None:
        """The training resolution changed: images smaller than it are reported again."""
        if resolution != self.resolution:
            self.resolution = resolution
            self.run_check()

    def folder_strings(self) -> list[str]:
        """The roots as the project file records them: relative to the project folder when inside it."""
        project = self.project_dir
        return [root.relative_to(project).as_posix() if project is not None and root.is_relative_to(project)
                else str(root) for root in self.roots]

    def choose_folder(self) -> None:
        start = self.settings.value("datasetPanel/lastFolder", str(self.project_dir or Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Add a folder of images", str(start))
        if path:
            self.settings.setValue("datasetPanel/lastFolder", path)
            self.add_folders([Path(path)])

    def choose_import(self) -> None:
        start = self.settings.value("datasetPanel/lastFolder", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Import a copy of a folder of images", str(start))
        if path:
            self.import_copy([Path(path)])

    def import_copy(self, folders: Sequence[Path]) -> None:
        dest = (self.project_dir / IMPORT_FOLDER) if self.project_dir is not None else None
        if dest is None:
            chosen = QFileDialog.getExistingDirectory(self, "Where should the copies go?", str(Path.home()))
            if not chosen:
                return
            dest = Path(chosen)
        for folder in folders:
            run_in_background(import_folder, Path(folder), dest, self.caption_extension,
                              on_done=lambda target: self.add_folders([target]), on_error=self._background_error)

    def _imported(self, dest: Path, n: int) -> None:
        self.status_message.emit(f"Copied {n} image{'s' if n != 1 else ''} into {dest}")
        if dest.resolve() in self.roots:
            self._rescan_folders([dest.resolve()])
        else:
            self.add_folders([dest])

    def add_folders(self, folders: Sequence[Path]) -> None:
        found = dict.fromkeys(Path(os.path.normpath(Path(f).expanduser().resolve())) for f in folders)
        new = [p for p in found if p not in self.roots]
        if not new:
            return
        self.roots.extend(new)
        self.folders_changed.emit(self.folder_strings())
        self._load(new, replace=False)

    def remove_folder(self, folder: Path) -> None:
        folder = Path(folder)
        if folder not in self.roots:
            return
        self.roots.remove(folder)
        self.model.remove_folder(folder)
        self.watcher.unwatch_under(folder)
        self.folders_changed.emit(self.folder_strings())
        self._refresh_folder_list()
        self._freq_timer.start()
        self._update_empty()

    def _load(self, roots: list[Path], *, replace: bool) -> None:
        if replace:
            self._generation += 1
        self.loader.scan(roots, caption_extension=self.caption_extension, default_repeats=self.default_repeats,
                         replace=replace)
        self.footer.setText("Reading folders…")
        self._update_empty()

    def _add_chunk(self, records: list[ImageRecord], problems: list) -> None:
        for problem in problems:
            if problem.kind == "missing":
                self.banner.show_message("warning", f"Folder not found: {problem.path}",
                                         "Remove it in the Folders tab, or put the images back.")
            else:
                self.banner.show_message("error", problem.message)
        if not records:
            return
        self.model.append_items([self._item(rec) for rec in records])
        # background thumbnails wait for the scan to finish: both are mostly Python, and running them
        # side by side only makes each wait for the other's turn at the interpreter lock
        self._update_empty()

    def _scan_finished(self, roots: list[Path], error: BaseException | None) -> None:
        if error is not None:
            self._background_error(error)
        for root in roots:
            self.watcher.watch_folders(folder for folder, _ in dataset_folders(root))
        self._refresh_folder_list()
        self._freq_timer.start()
        self._update_empty()
        self._recount_soon()
        if not self.loader.scanning:
            self.loader.request_all(it.record for it in self.model.items if not (it.thumb or it.thumb_error))
            self.loaded.emit(self.model.rowCount())

    def _item(self, rec: ImageRecord) -> DatasetItem:
        caption = rec.caption if rec.has_caption_file else None
        state = self.state
        if not (state.excluded or state.focus or state.crops or state.repeats):
            return DatasetItem(record=rec, caption=caption)  # the usual case: 10,000 lookups saved
        repeats = state.repeats.get(rec.folder, rec.repeats)
        if repeats != rec.repeats:
            rec = replace(rec, repeats=repeats)
        return DatasetItem(record=rec, caption=caption, excluded=rec.path in state.excluded,
                           focus=state.focus.get(rec.path), crop=state.crops.get(rec.path))

    def _background_error(self, exc: BaseException) -> None:
        self.banner.show_message("error", str(exc) or type(exc).__name__, getattr(exc, "hint", ""))

    def _refresh_folder_list(self) -> None:
        counts = Counter(it.record.folder for it in self.model.items)
        repeats = {it.record.folder: it.record.repeats for it in self.model.items}
        chosen = self.state.repeats
        self.folder_list.set_folders([
            (folder, folder == root, counts.get(folder, 0), repeats.get(folder, chosen.get(folder, named)))
            for root in self.roots for folder, named in dataset_folders(root, self.default_repeats)
            if folder == root or folder in counts])

    def add_paths(self, paths: Sequence[str | Path]) -> None:
        """Dropped or chosen paths, each sent where it belongs. Folders are referenced in place; single images
        are copied into the project (or, without a project folder, their folder is added)."""
        plan = classify(paths)
        self.add_folders(list(plan.folders))
        if plan.images:
            self._add_loose_images(list(plan.images))
        if plan.model is not None:
            self.model_dropped.emit(str(plan.model))
        if plan.loras:
            self.loras_dropped.emit([str(p) for p in plan.loras])
        self.drop_note = plan.note()
        self.status_message.emit(self.drop_note)

    def _add_loose_images(self, images: list[Path]) -> None:
        if self.project_dir is None:
            self.add_folders(sorted({p.parent for p in images}))
            return
        dest = self.project_dir / IMPORT_FOLDER / "imported"
        run_in_background(import_copies, images, dest, self.caption_extension,
                          on_done=lambda _: self._imported(dest, len(images)),
                          on_error=self._background_error)

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
        if paths := _local_paths(event):
            event.acceptProposedAction()
            self.add_paths(paths)
        else:
            event.ignore()

    def _rescan_folders(self, folders: list[Path]) -> None:
        for folder in folders:
            repeats = next((it.record.repeats for it in self.model.items if it.record.folder == folder),
                           repeats_for_folder(folder, self.default_repeats)[0])
            scan = partial(scan_folder, folder, repeats=repeats, caption_extension=self.caption_extension)
            run_in_background(scan, on_done=partial(self._rescanned, folder, generation=self._generation,
                                                    started=time.monotonic()),
                              on_error=lambda exc: None)  # a folder that vanished is reported on next open

    def _rescanned(self, folder: Path, records: list[ImageRecord], generation: int, started: float) -> None:
        if generation != self._generation:
            return
        on_disk = {r.path: r for r in records}
        mine = [it for it in self.model.items if it.record.folder == folder]
        changed = {}
        for it in mine:
            rec = on_disk.get(it.path)
            if rec is None or self._written_at.get(it.path, 0.0) >= started:
                continue  # gone, or written here while the scan read the old text: ours is newer
            disk = rec.caption if rec.has_caption_file else None
            if disk != it.caption:
                changed[it.path] = disk
                self.store.forget(it.path)
        if changed:
            self.model.set_captions(changed)
            current = self.editor.path
            if current in changed:
                self.editor.show_caption(current, changed[current],
                                         note=f"{current.name} — changed by another program; reloaded")
            self.status_message.emit(f"Reloaded {len(changed)} caption(s) changed by another program")
            self._freq_timer.start()
        known = {it.path for it in mine}
        fresh = [self._item(r) for r in records if r.path not in known]
        gone = known - set(on_disk)
        if gone:
            self.model.set_items([it for it in self.model.items if it.path not in gone])
        if fresh:
            self.model.append_items(fresh)
            self.loader.request_all(it.record for it in fresh)
        if fresh or gone:
            self._refresh_folder_list()
            self._freq_timer.start()
