"""Run the fault-injection suite (`tests/faults/`) and print what happened per fault class.

    .venv/bin/python bench/faults_report.py                       # run the suite, print the table
    .venv/bin/python bench/faults_report.py --write-docs          # … and put the table in docs/reliability.md
    .venv/bin/python bench/faults_report.py --ledger ledger.json  # only format a ledger from an earlier run

The suite's tests write every case they try into a ledger (`tests/faults/conftest.py`): the fault or input
class, and whether it ended in a clear error or a recovery, a crash (an unexpected exception, a signal, a hang,
an unclear message) or lost data (a file that should be intact is not). This script runs pytest with
FAULTS_LEDGER set, then prints the ledger as a table with the pytest outcome and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- faults-table:start -->", "<!-- faults-table:end -->"
# classes whose cases are generated hostile inputs (the acceptance counts these: at least 500)
HOSTILE = ("safetensors:", "pickles:", "images:", "LoRA files:", "protocol:", "project files: corrupt",
           "dataset state file:", "paths:", "numbers:", "refused writes: mix", "text files:")


def run_suite(ledger: Path, extra: list[str]) -> tuple[int, float, str]:
    env = dict(os.environ, FAULTS_LEDGER=str(ledger), QT_QPA_PLATFORM="offscreen")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    summary = next((line for line in reversed(proc.stdout.splitlines())
                    if re.search(r"\b(passed|failed|error)", line)), "no pytest summary")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
    elif "slowest" in proc.stdout:  # --durations=N was passed through
        block = proc.stdout[proc.stdout.index("slowest") - 30:]
        sys.stderr.write(block[: block.find("\n=", 40) if "\n=" in block[40:] else len(block)] + "\n")
    return proc.returncode, wall, summary.strip("= ")


def table(data: dict) -> str:
    rows = ["| fault or input class | cases tried | clear error or recovery | crashes | data lost |",
            "|---|---:|---:|---:|---:|"]
    total = [0, 0, 0, 0]
    hostile = 0
    for name, c in sorted(data["classes"].items()):
        n = sum(c.values())
        good = c.get("clear", 0) + c.get("recovered", 0)
        rows.append(f"| {name} | {n} | {good} | {c.get('crash', 0)} | {c.get('lost', 0)} |")
        for i, v in enumerate((n, good, c.get("crash", 0), c.get("lost", 0))):
            total[i] += v
        if name.startswith(HOSTILE):
            hostile += n
    rows.append(f"| **total** | **{total[0]}** | **{total[1]}** | **{total[2]}** | **{total[3]}** |")
    rows.append("")
    rows.append(f"Generated hostile inputs among them: {hostile}.")
    failures = data.get("failures") or {}
    if failures:
        rows.append("")
        rows.append("Cases that crashed or lost data (first few per class):")
        for name, examples in sorted(failures.items()):
            for example in examples:
                rows.append(f"- {name}: {example}")
    return "\n".join(rows)


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {START} … {END} block")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=Path, help="format this ledger instead of running the suite")
    parser.add_argument("--write-docs", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if args.ledger:
        data = json.loads(args.ledger.read_text(encoding="utf-8"))
        header, code = f"ledger {args.ledger}", 0
    else:
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Path(tmp) / "ledger.json"
            code, wall, summary = run_suite(ledger, args.pytest_args)
            if not ledger.exists():
                print(f"the suite wrote no ledger ({summary})", file=sys.stderr)
                return code or 1
            data = json.loads(ledger.read_text(encoding="utf-8"))
        header = (f"Last run: {time.strftime('%Y-%m-%d %H:%M')}, `pytest tests/faults`: {summary}; "
                  f"wall time {wall:.0f} s on {os.cpu_count()} CPU cores (machine load average "
                  f"{os.getloadavg()[0]:.1f} at the end).")
    text = f"{header}\n\n{table(data)}"
    print(text)
    if args.write_docs:
        write_doc(text)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    broken = any(c.get("crash", 0) or c.get("lost", 0) for c in data["classes"].values())
    return code or int(broken)


if __name__ == "__main__":
    sys.exit(main())
