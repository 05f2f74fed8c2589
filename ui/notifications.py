"""Telling the user a run has ended when they are looking at another window: through the system tray
where there is one, and by flashing the taskbar entry (`QApplication.alert`), which every platform has.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from ui.app_icon import app_icon


@dataclass(frozen=True)
class Notice:
    title: str
    message: str
    method: str  # "tray" or "alert"
    error: bool = False


class Notifier(QObject):
    """Owned by the main window. `notify(...)` returns the Notice it delivered, or None when not needed."""

    delivered = Signal(object)  # Notice
    activated = Signal()  # the user clicked the notification: bring the window back

    def __init__(self, window: QWidget, *, use_tray: bool | None = None) -> None:
        super().__init__(window)
        self._window = window
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages()
        self._tray: QSystemTrayIcon | None = None
        if use_tray:
            self._tray = QSystemTrayIcon(app_icon(), self, toolTip="LoRA Studio",
                                         messageClicked=self._bring_to_front,
                                         activated=lambda _reason: self._bring_to_front())

    @property
    def method(self) -> str:
        return "tray" if self._tray is not None else "alert"

    def notify(self, title: str, message: str, *, error: bool = False) -> Notice | None:
        """Notify if the window is in the background: hidden, minimised or inactive."""
        w = self._window
        if w.isVisible() and not w.isMinimized() and w.isActiveWindow():
            return None
        notice = Notice(title, message, self.method, error)
        if self._tray is not None:
            self._tray.show()  # a tray icon must be visible to show a message
            icon = QSystemTrayIcon.MessageIcon.Critical if error else QSystemTrayIcon.MessageIcon.Information
            self._tray.showMessage(title, message, icon, 15_000)
        QApplication.alert(self._window, 0)  # also flash the taskbar entry until the window is activated
        self.delivered.emit(notice)
        return notice

    def run_finished(self, name: str, output: str | None = None) -> Notice | None:
        where = f"\nSaved to {output}" if output else ""
        return self.notify("Training finished", f"{name} is ready.{where}")

    def run_failed(self, name: str, reason: str) -> Notice | None:
        return self.notify("Training stopped with an error", f"{name}: {reason}", error=True)

    def _bring_to_front(self) -> None:
        w = self._window
        if w.isMinimized():
            w.setWindowState(w.windowState() & ~Qt.WindowState.WindowMinimized)
        w.show()
        w.raise_()
        w.activateWindow()
        if self._tray is not None:
            self._tray.hide()
        self.activated.emit()
