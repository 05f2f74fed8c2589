"""Runs a batch of hostile files through the real loaders in a child process: `python -m tests.faults.fuzz_runner
<suite> <results.jsonl>`.

Why a child: a loader that segfaults, aborts on a failed allocation or recurses off the C stack would take
pytest down with it and hide which file did it. Here every case writes a `begin` line before it runs and a
result line after, so the parent knows exactly which case killed the child, and the child's exit status
tells a crash from a clean run.

Each result records, per loader, `ok`, `error:<StudioError subclass>:<message>` or `crash:<type>:<message>`,
the growth of the peak RSS during the case (the kernel's high-water mark is reset before each case), and
whether the file on disk was left untouched.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def outcome(fn: Callable[[], object], clear: tuple[type[BaseException], ...]) -> str:
    """`ok`, `error:<type>:<message>` for the exceptions in `clear`, else `crash:<type>:<message>`."""
    try:
        fn()
    except clear as exc:
        return f"error:{type(exc).__name__}:{str(exc)[:400]}"
    except BaseException as exc:  # noqa: BLE001 - anything else is what we are looking for
        return f"crash:{type(exc).__name__}:{str(exc)[:400]}"
    return "ok"


def _safetensors(folder: Path) -> Iterator[tuple[str, str, Path, dict[str, Callable[[], object]]]]:
    from studio.formats.reader import read_lora
    from studio.models.safe_load import load_state_dict, read_safetensors_header
    from tests.faults.hostile_safetensors import cases

    for case_id, blob, expect in cases():
        path = folder / "case.safetensors"
        path.write_bytes(blob)
        bare = folder / "case-without-suffix"  # the sniffing path: a renamed file
        bare.write_bytes(blob)
        yield case_id, expect, path, {
            "header": lambda: read_safetensors_header(path),
            "load": lambda: load_state_dict(path),
            "lora": lambda: read_lora(path),
            "sniffed": lambda: load_state_dict(bare),
        }


def _images(folder: Path) -> Iterator[tuple[str, str, Path, dict[str, Callable[[], object]]]]:
    from studio.dataset.images import open_checked, to_rgb
    from studio.train.buckets import fit_to_bucket
    from tests.faults.hostile_images import cases, materialise

    for case_id, name, blob, expect in cases(folder):
        path = materialise(folder, name, blob)
        yield case_id, expect, path, {
            "open": lambda: open_checked(path),
            "train": lambda: fit_to_bucket(to_rgb(open_checked(path)), 64, 64),  # as training cuts an image
            "bucket": lambda: fit_to_bucket(to_rgb(open_checked(path)), 96, 32),  # aspect-ratio bucketing
        }


def _loras(folder: Path) -> Iterator[tuple[str, str, Path, dict[str, Callable[[], object]]]]:
    from safetensors.torch import save_file

    from studio.formats.inspect import summarize
    from studio.formats.reader import read_lora, read_lora_report
    from tests.faults.hostile_loras import cases

    for case_id, tensors, metadata, expect in cases():
        path = folder / "case.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        yield case_id, expect, path, {
            "report": lambda: read_lora_report(path),
            "read": lambda: read_lora(path),
            "read_nonfinite": lambda: read_lora(path, allow_nonfinite=True),
            "inspect": lambda: summarize(path),
        }


SUITES = {"safetensors": _safetensors, "images": _images, "loras": _loras}
CASE_TIMEOUT_S = 30  # a case that hangs (a regex that backtracks forever) is killed by SIGALRM, and reported


def main(argv: list[str]) -> int:
    suite, out_path = argv[0], Path(argv[1])
    sys.setrecursionlimit(1000)  # the default; a loader must not depend on a raised limit
    from studio.dataset.images import ImageProblem
    from studio.errors import StudioError

    clear = (StudioError, ImageProblem)
    can_reset = _reset_peak()
    with tempfile.TemporaryDirectory() as tmp, open(out_path, "w", encoding="utf-8") as out:
        for case_id, expect, path, loaders in SUITES[suite](Path(tmp)):
            out.write(json.dumps({"begin": case_id}) + "\n")
            out.flush()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            results, growth = {}, 0
            signal.alarm(CASE_TIMEOUT_S)  # default action: the child dies, and the parent names this case
            for name, fn in loaders.items():
                before = _status_kb("VmRSS")
                _reset_peak()
                results[name] = outcome(fn, clear)
                growth = max(growth, _status_kb("VmHWM") - before if can_reset else 0)
            signal.alarm(0)
            intact = (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "") == digest
            out.write(json.dumps({"case": case_id, "expect": expect, "results": results,
                                  "peak_growth_mb": round(growth / 1024, 1), "intact": intact}) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
