"""No clipped text at 1024×700 (issue 18): the window fits the size, and the named texts fit their widgets."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit

from tests.train_gui_helpers import close_window, open_window

pytestmark = pytest.mark.gui


@pytest.fixture
def small_window(qtbot, qapp, tmp_path):
    from ui.theme import apply_theme

    # as the app does before its window: the style sheet's padding counts (both themes share their metrics;
    # switching between them here would re-polish every widget earlier tests left alive, for a minute)
    apply_theme(qapp, "light")
    window = open_window(qtbot, tmp_path, None, start_worker=False)
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024)
    yield window
    close_window(window)


def cut_texts(window) -> list[str]:
    """Visible one-line texts narrower than they need: labels, buttons and combo boxes."""
    cut = []
    for w in window.findChildren(QAbstractButton) + window.findChildren(QLabel) + window.findChildren(QComboBox):
        if not w.isVisible() or (isinstance(w, QLabel) and w.wordWrap()):
            continue
        text = w.currentText() if isinstance(w, QComboBox) else w.text()
        if text and w.width() < w.minimumSizeHint().width():
            cut.append(text)
    return cut


def test_the_window_fits_1024_by_700(small_window):
    hint = small_window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 700


@pytest.mark.parametrize("panel", [0, 1, 2])
def test_no_panel_cuts_a_text_at_1024(qtbot, small_window, panel):
    small_window.tabs.setCurrentIndex(panel)
    qtbot.wait(10)
    assert small_window.width() == 1024
    assert cut_texts(small_window) == []


def test_filter_placeholder_and_path_button_fit(qtbot, small_window):
    small_window.tabs.setCurrentWidget(small_window.dataset_panel)
    field: QLineEdit = small_window.dataset_panel.filter_bar.text
    qtbot.waitUntil(field.isVisible)
    text = field.placeholderText()
    assert text == "Filter by caption or file name…"
    assert field.fontMetrics().horizontalAdvance(text) <= field.width() - 2 * field.fontMetrics().height()

    tabs = small_window.dataset_panel.tabs  # Caption, Tags, Problems, Folders: all shown, no scroll arrows
    assert tabs.tabBar().width() >= tabs.tabBar().sizeHint().width()

    small_window.tabs.setCurrentWidget(small_window.train_panel)
    button = small_window.train_panel.model_picker._button
    qtbot.waitUntil(button.isVisible)
    assert button.text() == "…" and button.menu() is None  # no menu arrow drawn over the "…"
    assert button.width() >= button.sizeHint().width()
    assert button.fontMetrics().horizontalAdvance("…") <= button.contentsRect().width()


def test_batch_edit_dialog_fits_its_title(qtbot):
    from ui.dialogs.batch_edit_dialog import BatchEditDialog

    dialog = BatchEditDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.fontMetrics().horizontalAdvance(dialog.windowTitle()) < dialog.width()
