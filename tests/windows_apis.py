"""The Windows test mode: run the core on Linux or macOS with the calls Windows lacks taken away.

Windows CPython has no `os.fchmod` (before 3.13), `os.statvfs`, `os.getuid`, `signal.SIGKILL`, `fcntl`, …;
code that uses one works everywhere we test and raises AttributeError or ImportError on a user's PC. In this
mode (`windows_apis` fixture) our code — every module of `studio` and `ui` — sees an `os` and a `signal`
without those names, cannot import the POSIX-only modules, and cannot open a folder as a file (Windows
cannot, so a folder fsync must cope), so that such a call fails in CI as it would on Windows.

It is the app's view that changes, not the modules themselves: the standard library and the libraries keep
their Linux halves, which need these calls underneath (pytest's temp folders call `os.getuid`,
`Popen.kill` sends `signal.SIGKILL`, psutil imports `resource`); on Windows they have other halves. So a
module of ours gets a stand-in for `os` and `signal` as its global (and from `import os` while the mode is on),
which answers every name but the removed ones from the real module. Outside the mode a stand-in left in a
module imported during it answers everything, as the real module would.

`LORA_STUDIO_WINDOWS_APIS=1` in the environment applies the mode to every test (tests/conftest.py).
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import types
from collections.abc import Iterator
from typing import Any

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
SIGNAL_NAMES = (
    "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE", "SIGSTOP", "SIGCONT",
    "SIGTSTP", "SIGWINCH", "SIGXFSZ", "alarm", "pause", "setitimer", "getitimer", "ITIMER_REAL", "siginterrupt",
    "pthread_kill", "pthread_sigmask", "sigwait", "sigpending",
)
#: Modules that exist only on POSIX systems.
POSIX_MODULES = ("fcntl", "pwd", "grp", "resource", "termios", "tty", "pty", "syslog", "crypt", "nis")
#: Whose view changes: the app's packages (and, for imports only, the tests that stand in for them).
APP_PACKAGES = ("studio", "ui")


class _WindowsView(types.ModuleType):
    """A stand-in for `os` or `signal`: the real module's names, less the removed ones while `active`."""

    def __init__(self, real: types.ModuleType, removed: tuple[str, ...]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self._real = real
        self._removed = frozenset(removed)
        self._active = False

    def __getattr__(self, name: str) -> Any:
        if self.__dict__.get("_active") and name in self.__dict__["_removed"]:
            raise AttributeError(f"module '{self._real.__name__}' has no attribute '{name}' (not on Windows)")
        if self.__dict__.get("_active") and self._real is os and name == "open":
            return _windows_open
        return getattr(self._real, name)

    def __dir__(self) -> list[str]:
        names = dir(self._real)
        return [n for n in names if n not in self._removed] if self._active else names


def _windows_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    """`os.open`, which on Windows cannot open a folder (so no folder fsync there)."""
    if dir_fd is None and os.path.isdir(path):
        error = PermissionError(13, "Permission denied", str(path))
        error.winerror = 5  # type: ignore[attr-defined]  # what Windows says for a folder
        raise error
    return os.open(path, flags, mode, dir_fd=dir_fd)


OS_VIEW = _WindowsView(os, OS_NAMES)
SIGNAL_VIEW = _WindowsView(signal, SIGNAL_NAMES)


def _is_app(module_name: str, *, tests_too: bool = False) -> bool:
    root = module_name.split(".", 1)[0]
    return root in APP_PACKAGES or (tests_too and root == "tests")


def apply_windows_apis(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Turn the mode on (undone by `monkeypatch` at the end of the test); returns what was removed."""
    removed = [f"os.{n}" for n in OS_NAMES if hasattr(os, n)] + [f"signal.{n}" for n in SIGNAL_NAMES
                                                                 if hasattr(signal, n)]
    for view in (OS_VIEW, SIGNAL_VIEW):
        monkeypatch.setattr(view, "_active", True)
    for name, module in list(sys.modules.items()):  # the modules of ours already imported
        if module is None or not _is_app(name):
            continue
        for attr, value in list(vars(module).items()):
            if value is os or value is signal:
                monkeypatch.setattr(module, attr, OS_VIEW if value is os else SIGNAL_VIEW)

    real_import = builtins.__import__

    def windows_import(name, globals=None, locals=None, fromlist=(), level=0):  # type: ignore[no-untyped-def]
        caller = (globals or {}).get("__name__", "")
        if level == 0 and _is_app(caller, tests_too=True):
            if name.split(".", 1)[0] in POSIX_MODULES:
                raise ModuleNotFoundError(f"No module named '{name}' (not on Windows)", name=name)
            if _is_app(caller) and name in ("os", "signal"):  # `import os` in a function, or a first import
                return OS_VIEW if name == "os" else SIGNAL_VIEW
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", windows_import)
    return removed + list(POSIX_MODULES)


@pytest.fixture
def windows_apis(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The test runs with the POSIX-only calls removed from the app's view (see the module docstring)."""
    yield apply_windows_apis(monkeypatch)
