"""Fault-injection suite: shared fixtures, the outcome ledger and the disk-fault helpers.

Every case a test tries is written to the ledger with its outcome, so `bench/faults_report.py` can print
how many cases of each fault class ended in a clear error or a recovery, and how many crashed or lost
data. The test still asserts: a crash or a lost file fails the test *and* is counted.

Outcomes: `clear` (a StudioError / ProtocolError / ImageProblem with a message, or a documented handling
such as "loaded: the mutation left a valid file"), `recovered` (the fault happened and the data came
back: resume worked, the previous file is intact), `crash` (any other exception, a signal, a hang),
`lost` (a file that should be intact is not).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

OUTCOMES = ("clear", "recovered", "crash", "lost")


class Ledger:
    """Counts cases per fault class. Thread-safe; written to $FAULTS_LEDGER at the end of the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
        self.examples: dict[str, list[str]] = defaultdict(list)

    def record(self, fault_class: str, outcome: str, detail: str = "") -> None:
        assert outcome in OUTCOMES, outcome
        with self._lock:
            self.counts[fault_class][outcome] += 1
            if outcome in ("crash", "lost") and len(self.examples[fault_class]) < 5:
                self.examples[fault_class].append(detail[:300])

    def as_dict(self) -> dict:
        return {"classes": {k: dict(v) for k, v in sorted(self.counts.items())},
                "failures": {k: v for k, v in self.examples.items() if v}}


_LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return _LEDGER


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    target = os.environ.get("FAULTS_LEDGER")
    if target and _LEDGER.counts:
        Path(target).write_text(json.dumps(_LEDGER.as_dict(), indent=1), encoding="utf-8")


def pytest_terminal_summary(terminalreporter):
    if not _LEDGER.counts:
        return
    terminalreporter.section("fault classes (cases / clear or recovered / crashes / data lost)")
    total = 0
    for name, c in sorted(_LEDGER.counts.items()):
        n = sum(c.values())
        total += n
        terminalreporter.write_line(f"{name:<44} {n:>5} {c['clear'] + c['recovered']:>5} {c['crash']:>4} "
                                    f"{c['lost']:>4}")
    terminalreporter.write_line(f"{'total':<44} {total:>5}")


# --------------------------------------------------------------------------------------------------
# proof that no code ran: every malicious payload would create a marker file


@pytest.fixture
def marker(tmp_path) -> Path:
    """A path that a payload would create; the test asserts it does not exist afterwards."""
    path = tmp_path / f"PWNED-{uuid.uuid4().hex[:8]}"
    yield path
    assert not path.exists(), f"a payload ran: {path} exists"


# --------------------------------------------------------------------------------------------------
# disks that fail: a tiny tmpfs (disk full) and a read-only tmpfs, mounted for the test


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/.faults-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    except OSError:
        return False
    finally:
        probe.rmdir()


CAN_MOUNT = _can_mount()


class SmallDisk:
    """A tmpfs of `size` bytes at `path`: `fill()` it to make the next write fail with ENOSPC, `read_only()`."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)], check=True,
                       capture_output=True)

    def fill(self, leave: int = 0) -> None:
        """Fill the disk, leaving about `leave` bytes free."""
        filler = self.path / ".filler"
        with open(filler, "ab") as fh:
            while True:
                free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
                if free <= leave:
                    break
                try:
                    fh.write(b"\0" * min(65536, max(free - leave, 1)))
                    fh.flush()
                except OSError:
                    break

    def free(self) -> None:
        (self.path / ".filler").unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True,
                       capture_output=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """Factory for SmallDisks under tmp_path; skipped where tmpfs cannot be mounted (see the RLIMIT tests)."""
    if not CAN_MOUNT:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE variants cover disk-full here")
    made: list[SmallDisk] = []

    def make(name: str = "disk", size: int = 1 << 20) -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size)
        made.append(disk)
        return disk

    yield make
    for disk in made:
        disk.unmount()
