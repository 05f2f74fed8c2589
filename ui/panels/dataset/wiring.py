"""Every signal of the Dataset panel connected in one place, so what reacts to what is read in one function."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.dataset.tags import TagOp

if TYPE_CHECKING:
    from ui.panels.dataset_panel import DatasetPanel


def connect(panel: DatasetPanel) -> None:
    panel.add_folder_action.triggered.connect(panel.choose_folder)
    panel.import_action.triggered.connect(panel.choose_import)
    panel.batch_action.triggered.connect(lambda: panel.open_batch_dialog())
    panel.trigger_action.triggered.connect(lambda: panel.open_batch_dialog("trigger_first"))
    panel.autocaption_action.triggered.connect(panel.open_autocaption)
    panel.check_action.triggered.connect(panel.check_and_show)
    panel.exclude_action.triggered.connect(panel._toggle_exclude)
    stack = panel.undo_stack
    panel.undo_action.triggered.connect(stack.undo)
    panel.redo_action.triggered.connect(stack.redo)
    stack.canUndoChanged.connect(panel.undo_action.setEnabled)
    stack.canRedoChanged.connect(panel.redo_action.setEnabled)
    stack.undoTextChanged.connect(lambda t: panel.undo_action.setToolTip(f"Undo {t}" if t else "Undo"))
    stack.redoTextChanged.connect(lambda t: panel.redo_action.setToolTip(f"Redo {t}" if t else "Redo"))

    panel.grid.selectionModel().selectionChanged.connect(panel._selection_changed)
    panel.grid.zoom_requested.connect(panel.filter_bar.step_zoom)
    panel.filter_bar.zoom_changed.connect(panel.set_thumb_side)
    panel.filter_bar.text_changed.connect(panel.proxy.set_text)
    panel.filter_bar.status_changed.connect(panel.proxy.set_status)
    panel.filter_bar.sort_changed.connect(panel._sort)
    panel.filter_bar.tag_cleared.connect(lambda: panel._filter_tag(None))
    panel.editor.caption_committed.connect(panel.set_caption)
    panel.exclude_box.clicked.connect(lambda on: panel.set_excluded(panel.selected_paths(), on))
    panel.focus_picker.focus_changed.connect(panel._focus_picked)
    panel.focus_picker.crop_changed.connect(panel._crop_picked)
    panel.tag_table.filter_requested.connect(panel._filter_tag)
    panel.tag_table.remove_requested.connect(lambda t: panel.run_batch(TagOp("remove", t), "all"))
    panel.tag_table.first_requested.connect(lambda t: panel.run_batch(TagOp("trigger_first", t), "all"))
    panel.tag_table.rename_requested.connect(panel._rename_tag)
    panel.problem_report.image_chosen.connect(panel.select_path)
    panel.folder_list.repeats_changed.connect(panel.set_repeats)
    panel.folder_list.remove_requested.connect(panel.remove_folder)
    panel.folder_list.folder_chosen.connect(lambda f: panel.status_message.emit(str(f)))

    panel.loader.chunk_ready.connect(panel._add_chunk)
    panel.loader.scan_finished.connect(panel._scan_finished)
    panel.loader.thumbnails_ready.connect(panel._thumbnails_arrived)
    panel.loader.idle.connect(panel._loader_idle)
    panel.checker.progress.connect(panel.problem_report.set_progress)
    panel.checker.finished.connect(panel._checked)
    panel.checker.failed.connect(lambda message: panel.banner.show_message("error", message))
    panel.watcher.folders_changed.connect(panel._rescan_folders)

    panel._freq_timer.timeout.connect(panel._refresh_frequencies)
    panel._footer_timer.timeout.connect(panel._update_footer)
    for model in (panel.model, panel.proxy):  # any change to the rows, shown or not, recounts
        for signal in (model.modelReset, model.rowsInserted, model.rowsRemoved, model.layoutChanged):
            signal.connect(panel._recount_soon)
    panel.model.dataChanged.connect(panel._recount_soon)  # captions, exclusions, problems, thumbnails
