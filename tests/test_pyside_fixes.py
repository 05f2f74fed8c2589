"""PySide6 6.12.0 on Python 3.11 loses a reference to None per void call and to True per emit(); importing
`ui` must make that harmless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import sys
import ui  # applies ui.pyside_fixes
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

class Relay(QObject):
    message = Signal(object)

app = QCoreApplication([])
relay = Relay()
relay.message.connect(lambda m: None)
timer = QTimer()
for i in range(300_000):  # a worker heartbeat a second for three days, relayed once
    relay.message.emit(i)
    timer.setInterval(5)  # a void call
del relay, app
import gc; gc.collect()
print("survived")
"""


def test_many_emits_do_not_kill_the_interpreter():
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "survived" in done.stdout
