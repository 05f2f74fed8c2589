"""How much the window's event loop stalls while a run streams progress and previews (acceptance 3).

A stall is what the user feels as a frozen window. We measure it as timer drift: precise QTimers of
1 ms and 5 ms record when they actually fire; each gap beyond the interval is a stall of the GUI thread
(work on it, or the OS not scheduling it). Two phases, same window, same worker:

- bare: an empty event loop in the same process before any window exists (the machine's own noise:
  on shared CPUs the OS alone can hold a process off the CPU for tens of milliseconds);
- idle: the window open, the worker loaded and idle, no run (the reference: what the machine itself adds);
- running: a tiny-model run streaming a progress event every step and previews every few steps into the
  loss chart and the gallery (thumbnails decoded off the GUI thread).

Targets for the running phase: p99 < 16 ms (one frame at 60 Hz), max < 100 ms.

Usage: python bench/ui_latency.py [--seconds 30] [--sample-every 2]
Writes bench/results/ui_latency.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_P99_MS, TARGET_MAX_MS = 16.0, 100.0


class DriftProbe:
    """A precise timer that records how late each tick comes (ms beyond its interval)."""

    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms
        self.lateness: list[float] = []
        self._clock = QElapsedTimer()
        self._last = 0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lateness.clear()
        self._clock.start()
        self._last = self._clock.nsecsElapsed()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        self.lateness.append(max(0.0, (now - self._last) / 1e6 - self.interval))
        self._last = now

    def summary(self) -> dict:
        data = sorted(self.lateness)
        if not data:
            return {"ticks": 0}
        pick = lambda q: data[min(len(data) - 1, int(q * len(data)))]  # noqa: E731
        return {"ticks": len(data), "p50_ms": round(statistics.median(data), 3), "p99_ms": round(pick(0.99), 3),
                "max_ms": round(data[-1], 3), "over_16ms": sum(1 for d in data if d > 16),
                "over_100ms": sum(1 for d in data if d > 100)}


def spin(app, seconds: float, until=None) -> bool:
    loop_end = time.monotonic() + seconds
    while time.monotonic() < loop_end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until is not None and until():
            return True
        time.sleep(0.005)
    return until is None


def measure(app, seconds: float) -> dict:
    probes = [DriftProbe(1), DriftProbe(5)]
    for probe in probes:
        probe.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    for probe in probes:
        probe.stop()
    return {f"timer_{p.interval}ms": p.summary() for p in probes}


def make_project(folder: Path, sample_every: int) -> Path:
    from studio.config import save_project
    from studio.models.tiny import save_tiny_model
    from tests.conftest import make_images, tiny_config

    save_tiny_model(folder / "model", "sd1", seed=0)
    data = make_images(folder / "data", n=8, size=(64, 64))
    cfg = tiny_config(folder / "model", data, folder / "out",
                      schedule={"max_steps": 100_000, "batch_size": 1},
                      sampling={"every_n_steps": sample_every, "prompts": ("photo, red thing", "photo, blue thing"),
                                "steps": 2},
                      output={"save_every_n_steps": 0})
    project = folder / "project.toml"
    save_project(cfg, project)
    return project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sample-every", type=int, default=2)
    args = parser.parse_args(argv)

    from studio.events import Progress, Sample
    from ui.app import create_application
    from ui.main_window import MainWindow

    app = create_application()
    print(f"bare event loop, {args.seconds:.0f} s…", flush=True)
    bare = measure(app, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        project = make_project(tmp_path, args.sample_every)
        window = MainWindow(project, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        window.resize(1400, 900)
        window.show()
        panel = window.train_panel
        counts = {"progress": 0, "sample": 0}

        def count(message) -> None:
            if isinstance(message, Progress):
                counts["progress"] += 1
            elif isinstance(message, Sample):
                counts["sample"] += 1

        window.worker.message_received.connect(count)
        if not spin(app, 120, lambda: window.project_loaded and window.worker.state == "ready"):
            raise SystemExit(f"the worker did not get ready: {window.worker.detail}")
        spin(app, 1.0)
        print(f"idle phase, {args.seconds:.0f} s…", flush=True)
        idle = measure(app, args.seconds)

        panel.controls.start_button.click()
        if not spin(app, 300, lambda: panel.gallery.count() >= 1):
            raise SystemExit(f"the run did not produce a preview: {panel.banner.text()}")
        before = dict(counts)
        shown_before = panel.gallery.count()
        print(f"running phase, {args.seconds:.0f} s…", flush=True)
        t0 = time.monotonic()
        running = measure(app, args.seconds)
        elapsed = time.monotonic() - t0
        stream = {"progress_events": counts["progress"] - before["progress"],
                  "previews": counts["sample"] - before["sample"],
                  "previews_in_gallery": panel.gallery.count() - shown_before,
                  "steps_per_s": round((counts["progress"] - before["progress"]) / elapsed, 2)}
        panel.controls.stop_button.click()
        spin(app, 120, lambda: panel.run_state == "idle")
        window.worker.shutdown(timeout_s=30)
        window.worker.wait_exited(30)
        window._close_ready = True
        window.close()

    five = running["timer_5ms"]
    result = {
        "what": "GUI event-loop stall (QTimer lateness beyond its interval) over the same window, idle vs. running",
        "seconds_per_phase": args.seconds,
        "preview_every_n_steps": args.sample_every,
        "bare": bare, "idle": idle, "running": running, "stream": stream,
        "targets": {"p99_ms": TARGET_P99_MS, "max_ms": TARGET_MAX_MS},
        "meets_targets": five["p99_ms"] < TARGET_P99_MS and five["max_ms"] < TARGET_MAX_MS,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "qpa": os.environ.get("QT_QPA_PLATFORM", ""),
                    "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ui_latency.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "ui_latency.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    rows = []
    for timer in ("timer_5ms", "timer_1ms"):
        b, i, run = r["bare"][timer], r["idle"][timer], r["running"][timer]
        name = timer.replace("timer_", "")
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
            rows.append(f"| {name} timer | {label} | {b[key]:.2f} | {i[key]:.2f} | {run[key]:.2f} |")
        for key, label in (("over_16ms", "ticks late > 16 ms"), ("over_100ms", "ticks late > 100 ms")):
            rows.append(f"| {name} timer | {label} | {b[key]} | {i[key]} | {run[key]} |")
        rows.append(f"| {name} timer | ticks | {b['ticks']} | {i['ticks']} | {run['ticks']} |")
    s = r["stream"]
    verdict = "meets" if r["meets_targets"] else "MISSES"
    return "\n".join([
        "# GUI event-loop stall while training (bench/ui_latency.py)",
        "",
        f"Lateness of precise QTimers beyond their interval, {r['seconds_per_phase']:.0f} s per phase, same window.",
        "Bare = an empty event loop, no window (the machine's noise). Idle = window open, worker loaded, no run "
        "(the reference). Running = a tiny-model run streaming a progress event per step and 2 previews every "
        f"{r['preview_every_n_steps']} steps into the chart and gallery.",
        "",
        "| probe | statistic | bare (ms) | idle window (ms) | running (ms) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"During the running phase: {s['progress_events']} progress events ({s['steps_per_s']} steps/s), "
        f"{s['previews']} previews received, {s['previews_in_gallery']} shown in the gallery.",
        "",
        f"Targets (5 ms timer, running): p99 < {r['targets']['p99_ms']:.0f} ms, max < {r['targets']['max_ms']:.0f} ms "
        f"→ **{verdict}** them.",
        "",
        f"Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, "
        f"QPA `{r['machine']['qpa']}`, load average {r['machine']['load_avg']} (CPUs shared with other jobs; "
        f"the worker trains on the same cores as the window). {r['when']}.",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
