"""The window (offscreen) meeting hostile input: corrupt project files and a worker that writes garbage on its
pipe. Promise: no crash and no exception in a slot (pytest-qt fails a test on either), a message on screen, the
window still answering; the file on disk untouched.
"""

from __future__ import annotations

import sys
import time

import pytest

pytest.importorskip("PySide6")

from tests.train_gui_helpers import close_window, open_window  # noqa: E402

pytestmark = pytest.mark.gui

CORRUPT = {
    "binary": b"\x00\xff\x13\x37" * 64,
    "truncated": b"format_version = 1\n[network]\nrank = ",
    "newer": b"format_version = 9\n",
    "nested": b"format_version = 1\nx = " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
    "huge-number": b"format_version = " + b"9" * 5000 + b"\n",
    "nan": b"[optimizer]\nunet_lr = nan\n",
    "utf16": "[output]\nname = 'x'\n".encode("utf-16"),
    "typo": b"[netwrok]\nrank = 4\n",
}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_corrupt_project_files_in_the_window(ledger, qtbot, tmp_path):
    from studio.config import load_project
    from studio.errors import StudioError

    def refused(project) -> bool:
        try:
            load_project(project)
        except StudioError:
            return True
        return False

    problems = []
    for name, blob in CORRUPT.items():
        folder = tmp_path / name
        folder.mkdir()
        project = folder / "project.toml"
        project.write_bytes(blob)
        window = open_window(qtbot, folder, project, start_worker=False)
        try:
            banner = window.train_panel.banner
            shown = banner.isVisible() and "Cannot open" in banner.text()
            t0 = time.monotonic()
            window.tabs.setCurrentIndex(0)
            responsive = not window.grab().isNull() and time.monotonic() - t0 < 2.0
            intact = project.read_bytes() == blob
            clear = refused(project)
            ok = shown and responsive and intact and bool(clear)
            ledger.record("window: corrupt project files", "clear" if ok else "crash",
                          f"{name}: shown={shown} responsive={responsive} intact={intact}")
            if not ok:
                problems.append(f"{name}: banner shown={shown} ({banner.text()[:120]!r}), responsive={responsive}, "
                                f"file intact={intact}")
        finally:
            close_window(window)
    assert not problems, "\n".join(problems)


GARBAGE_WORKER = r"""
import json, sys, time
out = sys.stdout.buffer
good = lambda d: out.write(json.dumps({"v": 1, **d}).encode() + b"\n")
good({"type": "starting", "pid": 1})
for line in (b"\x00\xff garbage", b"{", b'{"v":1,"type":"progress"}', b"[" * 100000 + b"]" * 100000,
             b'{"v":1,"type":"heartbeat","seq":' + b"9" * 5000 + b',"busy":false}', b"x" * (3 << 20),
             b'{"v":2,"type":"ready"}', b'{"v":1,"type":"failed","error":5}'):
    out.write(line + b"\n")
    good({"type": "heartbeat", "seq": 1, "busy": False})
    out.flush()
    time.sleep(0.05)
good({"type": "log", "level": "info", "text": "still here"})
out.flush()
time.sleep(1.0)
out.write(b'{"v":1,"type":"lo')  # dies mid-line
out.flush()
"""


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_worker_writing_garbage_does_not_take_the_window_down(ledger, qtbot, tmp_path):
    from studio.worker import protocol as p
    from ui.worker_client import WorkerClient

    worker = WorkerClient(heartbeat_timeout_s=5.0, command=[sys.executable, "-c", GARBAGE_WORKER])
    window = open_window(qtbot, tmp_path, None, worker=worker)
    received: list = []
    worker.message_received.connect(received.append)
    try:
        qtbot.waitUntil(lambda: any(getattr(m, "text", "") == "still here" for m in received), timeout=20_000)
        qtbot.waitUntil(lambda: worker.state == "dead" or any(type(m).__name__ == "WorkerExited" for m in received),
                        timeout=20_000)
        errors = [m for m in received if isinstance(m, p.ProtocolError)]
        assert len(errors) >= 9, [str(e) for e in errors]
        assert not window.grab().isNull()
        ledger.record("window: garbage on the worker pipe", "clear", f"{len(errors)} bad lines")
    finally:
        close_window(window)
