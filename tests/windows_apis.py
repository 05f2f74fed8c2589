"""The Windows test mode: run the core on Linux or macOS with the calls Windows lacks taken away.

Windows CPython has no `os.fchmod` (before 3.13), `os.statvfs`, `os.getuid`, `signal.SIGKILL`, `fcntl`, …;
code that uses one works everywhere we test and raises AttributeError or ImportError on a user's PC. Here
those names are deleted from `os` and `signal`, and the POSIX-only modules cannot be imported by our code,
for as long as a test runs (`windows_apis` fixture), so that such a call fails in CI as it would on Windows.
(Libraries keep their imports: psutil's Linux half needs `resource`, and on Windows it has another half.)

What is removed is what Windows lacks, not what Linux's own standard library needs underneath: the few stdlib
functions that Windows implements differently (`shutil.disk_usage`) get a stand-in that does not go through
a removed name, as their Windows version does not. And Windows cannot open a folder as a file, so `os.open`
on a folder fails when called from our code (`studio`, `ui`); the standard library's own uses (`shutil.rmtree`
on Linux) are left alone.

`LORA_STUDIO_WINDOWS_APIS=1` in the environment applies the mode to every test (tests/conftest.py).
"""

from __future__ import annotations

import builtins
import os
import shutil
import signal
import sys
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Functions and constants of `os` that Windows' CPython does not have (3.10–3.12).
OS_NAMES = (
    "fchmod", "fchown", "chown", "lchown", "lchmod", "chroot", "statvfs", "fstatvfs", "sync",
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid", "setgid", "getresuid", "getlogin_r",
    "fork", "forkpty", "killpg", "setsid", "getsid", "getpgid", "setpgid", "getpgrp", "wait3",
    "wait4", "nice", "getpriority", "setpriority", "getloadavg", "mkfifo", "mknod", "major", "minor",
    "sched_getaffinity", "sched_setaffinity", "posix_fadvise", "posix_fallocate", "pipe2", "openpty",
    "O_DIRECTORY", "O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY", "O_SYNC", "O_DSYNC",
)
#: Signals and calls of `signal` that Windows does not have (it has SIGINT, SIGTERM, SIGABRT, SIGBREAK, …).
#: SIGALRM, alarm and setitimer stay: pytest-timeout runs on them, around the test. The static audit
#: (tests/test_posix_audit.py) keeps them out of our code.
SIGNAL_NAMES = (
    "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGPIPE", "SIGSTOP", "SIGCONT",
    "SIGTSTP", "SIGWINCH", "SIGXFSZ", "pause", "siginterrupt", "pthread_kill", "pthread_sigmask", "sigwait",
    "sigpending",
)
#: Modules that exist only on POSIX systems.
POSIX_MODULES = ("fcntl", "pwd", "grp", "resource", "termios", "tty", "pty", "syslog", "crypt", "nis")

_DiskUsage = namedtuple("_DiskUsage", "total used free")


_OURS = ("studio", "ui", "tests")


def _our_code(depth: int = 2) -> bool:
    """Whether the caller of the patched function is LoRA Studio (`studio.*`, `ui.*`, or a test standing in)."""
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return name.split(".", 1)[0] in _OURS


def apply_windows_apis(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Remove the POSIX-only names (undone by `monkeypatch` at the end of the test); returns what was removed."""
    removed: list[str] = []
    real_statvfs = getattr(os, "statvfs", None)
    for name in OS_NAMES:
        if hasattr(os, name):
            monkeypatch.delattr(os, name)
            removed.append(f"os.{name}")
    for name in SIGNAL_NAMES:
        if hasattr(signal, name):
            monkeypatch.delattr(signal, name)
            removed.append(f"signal.{name}")
    real_import = builtins.__import__

    def windows_import(name, globals=None, locals=None, fromlist=(), level=0):  # type: ignore[no-untyped-def]
        caller = (globals or {}).get("__name__", "")
        if level == 0 and name.split(".", 1)[0] in POSIX_MODULES and caller.split(".", 1)[0] in _OURS:
            raise ModuleNotFoundError(f"No module named '{name}' (not on Windows)", name=name)
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", windows_import)  # our `import fcntl` fails, psutil's does not
    removed.extend(POSIX_MODULES)

    if real_statvfs is not None:  # shutil.disk_usage exists on Windows, built on its own call, not statvfs
        def disk_usage(path: str | os.PathLike[str]) -> _DiskUsage:
            st = real_statvfs(path)
            free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
            return _DiskUsage(total, (st.f_blocks - st.f_bfree) * st.f_frsize, free)

        monkeypatch.setattr(shutil, "disk_usage", disk_usage)

    real_open = os.open

    def windows_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if dir_fd is None and _our_code() and os.path.isdir(path):
            error = PermissionError(13, "Permission denied", str(path))
            error.winerror = 5  # type: ignore[attr-defined]  # what Windows says for a folder
            raise error
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", windows_open)
    # getpass.getuser() looks at USERNAME before the pwd module, as on Windows where that is always set
    monkeypatch.setenv("USERNAME", os.environ.get("USER", "studio-user"))
    return removed


@pytest.fixture
def windows_apis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """The test runs with the POSIX-only calls removed (see the module docstring). `tmp_path` is made first:
    pytest's own temp folder code asks for `os.getuid` off Windows."""
    yield apply_windows_apis(monkeypatch)
