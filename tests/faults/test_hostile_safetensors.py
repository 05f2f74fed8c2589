"""Hostile `.safetensors` files (a few hundred, generated from a seed) through every loader: the safe loader's
header check, `load_state_dict` (also by sniffing a renamed file) and the LoRA reader.

Promise: each ends in a clear StudioError (or, for a mutation that left a valid file, a normal load); none
crashes the process, allocates what the header claims, or changes the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_MB = 64  # the files are at most a few MB; a header claiming 10^15 bytes must not move this


def run_fuzz(suite: str, tmp_path: Path, timeout: float = 240) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = tmp_path / f"{suite}.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tests.faults.fuzz_runner", suite, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines() if x.strip()] if out.exists() else []
    return proc, lines


def judge(ledger, fault_class: str, proc, lines: list[dict]) -> list[str]:
    """Record every case in the ledger; return a sentence per broken promise."""
    broken: list[str] = []
    done = {x["case"] for x in lines if "case" in x}
    begun = [x["begin"] for x in lines if "begin" in x]
    for case_id in begun:
        if case_id not in done:  # the child died inside this case
            ledger.record(fault_class, "crash", f"{case_id}: child exited with {proc.returncode}")
            broken.append(f"{case_id}: the loader killed the process (exit {proc.returncode}): {proc.stderr[-500:]}")
    if proc.returncode != 0 and not broken:
        broken.append(f"fuzz child exited with {proc.returncode}: {proc.stderr[-2000:]}")
    for x in lines:
        if "case" not in x:
            continue
        problems = []
        for loader, result in x["results"].items():
            if result.startswith("crash:"):
                problems.append(f"{loader} raised {result[6:]}")
            elif result == "ok" and x["expect"] == "error" and loader not in ("header", "open"):
                # (the header check alone may pass a file whose tensors the full load then refuses)
                problems.append(f"{loader} accepted a file it must refuse")
            elif result != "ok" and x["expect"] == "ok":
                problems.append(f"{loader} refused a valid file: {result[:200]}")
        if x["peak_growth_mb"] > MEMORY_LIMIT_MB:
            problems.append(f"memory grew by {x['peak_growth_mb']} MB")
        if not x["intact"]:
            problems.append("the file was changed")
        if problems:
            ledger.record(fault_class, "lost" if not x["intact"] else "crash", f"{x['case']}: {problems}")
            broken.append(f"{x['case']}: " + "; ".join(problems))
        else:
            ledger.record(fault_class, "clear")
    return broken


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_hostile_safetensors_headers_are_refused_clearly(ledger, tmp_path):
    proc, lines = run_fuzz("safetensors", tmp_path)
    cases = [x for x in lines if "case" in x]
    assert len(cases) >= 300, (len(cases), proc.stderr[-2000:])
    broken = judge(ledger, "safetensors: fuzzed headers", proc, lines)
    assert not broken, f"{len(broken)} of {len(cases)} cases broke a promise:\n" + "\n".join(broken[:40])
    # the designed lies are refused with a message that says what is wrong, naming the file
    by_id = {x["case"].split("-", 1)[1]: x for x in cases}
    claims = [x for k, x in by_id.items() if k.startswith("claims-")]
    assert claims and all(x["results"]["load"].startswith("error:") for x in claims)
    for x in cases:
        if x["expect"] == "error":
            message = x["results"]["load"]
            assert "case.safetensors" in message, (x["case"], message)


def test_fuzz_cases_are_deterministic():
    from tests.faults.hostile_safetensors import cases

    first, second = cases(), cases()
    assert [(i, len(b)) for i, b, _ in first] == [(i, len(b)) for i, b, _ in second]
    assert first[150][1] == second[150][1]


@pytest.mark.parametrize("claimed", [10**15, 2**63 - 8, 2**64 - 1])
def test_a_header_claiming_huge_sizes_is_refused_before_allocation(tmp_path, claimed):
    """In process, with tracemalloc: the refusal allocates kilobytes, not what the header claims."""
    import struct
    import tracemalloc

    from studio.errors import StudioError
    from studio.models.safe_load import load_state_dict

    path = tmp_path / "liar.safetensors"
    header = json.dumps({"w": {"dtype": "U8", "shape": [claimed], "data_offsets": [0, claimed]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(StudioError) as info:
            load_state_dict(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    assert "liar.safetensors" in str(info.value)
