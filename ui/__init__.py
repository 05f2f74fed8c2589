"""The PySide6 application. `ui` calls `studio`; `studio` never imports `ui` (see docs/ARCHITECTURE.md)."""

from ui.pyside_fixes import protect_singletons

protect_singletons()  # before any signal is emitted: see ui/pyside_fixes.py
