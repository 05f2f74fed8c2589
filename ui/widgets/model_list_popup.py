"""The drop-down list of the model picker: every base model found, one row each, with what detection said.

A view only: it shows the rows and status it is given and signals what the user chose or asked for;
`ModelPicker` does the scanning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from studio.models.describe import details, display_name, family_text, format_size, layout_text, same_path
from ui.layout import fill, row
from ui.theme import set_role
from ui.widgets.build import button

COLUMNS = ("Name", "Family", "Precision", "Size", "Layout")
PATH_ROLE = Qt.ItemDataRole.UserRole
MIN_WIDTH_EM = 44  # wide enough for a typical file name and the four short columns
MAX_HEIGHT_ROWS = 12


class ModelListPopup(QFrame):
    chosen = Signal(object)  # Path of the model the user picked
    rescan_requested = Signal()
    add_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup, frameShape=QFrame.Shape.StyledPanel)
        self.tree = QTreeWidget(rootIsDecorated=False, uniformRowHeights=True, alternatingRowColors=True,
                                allColumnsShowFocus=True)
        self.tree.setHeaderLabels(list(COLUMNS))
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(self._choose)
        self.tree.itemActivated.connect(self._choose)

        self.status = set_role(QLabel(), "muted")
        self.rescan_button = button("Rescan", "Look through the model folders again", self.rescan_requested)
        self.add_folder_button = button("Add model folder…", "Add a folder to search for base models (saved "
                                        "in the app settings)", self._add_folder)
        fill(QVBoxLayout(self), (self.tree, 1),
             row((self.status, 1), self.rescan_button, self.add_folder_button)).setContentsMargins(6, 6, 6, 6)

    # ---------------------------------------------------------------------------------------------
    def set_rows(self, rows: Sequence, current: str | Path | None, *, outside: Sequence = (),
                 roots: Sequence[str] = ()) -> None:
        """`rows`: ModelInfo to list; `current`: the path in the field (its row is selected);
        `outside`: rows that are not in any model folder (the project's own model), shown in italics;
        `roots`: the model folders, so names show the sub-folder a model is in."""
        self.tree.clear()
        for info in rows:
            own = any(info is o for o in outside)
            name = info.path.name + "  (this project)" if own else display_name(info.path, roots)
            item = QTreeWidgetItem([name, family_text(info), info.precision, format_size(info.size_bytes),
                                    layout_text(info)])
            item.setData(0, PATH_ROLE, str(info.path))
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tip = details(info)
            for column in range(len(COLUMNS)):
                item.setToolTip(column, tip)
            if own:
                font = item.font(0)
                font.setItalic(True)
                item.setFont(0, font)
            self.tree.addTopLevelItem(item)
            if current and same_path(info.path, current):
                self.tree.setCurrentItem(item)
        if not rows:
            empty = QTreeWidgetItem(["No models found yet. Add a folder that holds your checkpoints."])
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.tree.addTopLevelItem(empty)
            empty.setFirstColumnSpanned(True)

    def set_status(self, text: str, tooltip: str = "") -> None:
        self.status.setText(text)
        self.status.setToolTip(tooltip)

    def row_texts(self) -> list[tuple[str, ...]]:
        """What each listed model's row shows, column by column (for tests and accessibility checks)."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [tuple(item.text(c) for c in range(len(COLUMNS))) for item in items if item.data(0, PATH_ROLE)]

    def choose_row(self, row: int) -> None:
        self._choose(self.tree.topLevelItem(row))

    def show_below(self, anchor: QWidget) -> None:
        """Open under `anchor`, at least as wide as it, kept on the anchor's screen."""
        em = self.fontMetrics().averageCharWidth() * 2
        width = max(anchor.width(), MIN_WIDTH_EM * em)
        rows = max(1, min(self.tree.topLevelItemCount(), MAX_HEIGHT_ROWS))
        row_height = max(self.tree.sizeHintForRow(0), self.fontMetrics().height() + 6)
        height = (self.tree.header().sizeHint().height() + rows * row_height + 8
                  + max(self.rescan_button.sizeHint().height(), self.status.sizeHint().height()) + 24)
        pos = anchor.mapToGlobal(QPoint(0, anchor.height()))
        screen = anchor.screen().availableGeometry() if anchor.screen() else None
        if screen is not None:
            width = min(width, screen.width())
            pos.setX(max(screen.left(), min(pos.x(), screen.right() - width)))
            if pos.y() + height > screen.bottom():  # no room below: open above the field
                pos.setY(max(screen.top(), anchor.mapToGlobal(QPoint(0, 0)).y() - height))
        self.setGeometry(pos.x(), pos.y(), width, height)
        self.show()
        self.tree.setFocus()

    # ---------------------------------------------------------------------------------------------
    def _choose(self, item: QTreeWidgetItem | None) -> None:
        path = item.data(0, PATH_ROLE) if item is not None else None
        if path:
            self.hide()
            self.chosen.emit(Path(path))

    def _add_folder(self) -> None:
        self.hide()  # the folder dialog must not open under a popup that grabs the mouse
        self.add_folder_requested.emit()
