"""The user's choices kept in the project's dataset.json: images excluded from training, focus points and
crop boxes, and per-folder repeats. Each change is an undoable command; `_apply_state` saves and shows it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from studio.dataset.scan import repeats_for_folder
from studio.dataset.state import DatasetState, save_state
from studio.errors import StudioError
from ui.models.dataset_commands import StateCommand


class ChoicesMixin:
    def set_excluded(self, paths: Sequence[Path], excluded: bool) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        n = len(paths)
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
            self.model.set_repeats(folder, state.repeats.get(folder, repeats_for_folder(folder,
                                                                                        self.default_repeats)[0]))
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
