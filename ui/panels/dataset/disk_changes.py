"""Files changed by other programs: a watched folder or caption file changed on disk, so its folder is
scanned again and the grid, the captions and the editor catch up (an edit made here meanwhile wins)."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from studio.dataset.scan import ImageRecord, repeats_for_folder, scan_folder
from ui.background import run_in_background


class DiskChangesMixin:
    def _refresh_changed_folders(self, folders: list[Path]) -> None:
        for folder in folders:
            self._rescan_folder(folder)

    def _rescan_folder(self, folder: Path) -> None:
        repeats = next((it.record.repeats for it in self.model.items if it.record.folder == folder),
                       repeats_for_folder(folder, self.default_repeats)[0])
        generation, started = self._generation, time.monotonic()
        run_in_background(partial(scan_folder, folder, repeats=repeats, caption_extension=self.caption_extension),
                          on_done=lambda recs: self._rescanned(folder, recs, generation, started),
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
