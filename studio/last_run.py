"""What a project's run folders hold for the Train panel: the chart and previews of a run, and its newest run.

Opening a project shows its newest run as it was left (loss chart, previews) and offers to resume it when it
stopped before its final export (issue 18); a resumed run prefills the same way. Torch-free; read on the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.events import Progress, Sample
from studio.run_folder import RunSummary, read_events, read_run, run_dirs

Point = tuple[int, float, float, float]  # step, loss, smoothed loss, learning rate
Preview = tuple[int, str, str]  # step, prompt, path of the PNG


@dataclass(frozen=True)
class RunTrace:
    """The loss points and previews a run left in its folder, in step order."""

    points: tuple[Point, ...] = ()
    previews: tuple[Preview, ...] = ()


@dataclass(frozen=True)
class LastRun:
    summary: RunSummary
    trace: RunTrace

    def stop_sentence(self) -> str:
        """"The last run stopped at step 120 of 400." (or failed there)."""
        s = self.summary
        verb = "failed" if s.status == "failed" else "stopped"
        return f"The last run {verb} at step {s.last_step} of {s.total_steps}."


def read_trace(run_dir: Path, until_step: int | None = None) -> RunTrace:
    """Progress points and previews of `run_dir` (up to `until_step`), previews whose file is gone left out;
    of the steps a killed and resumed run repeats, the latest point is kept."""
    by_step: dict[int, Point] = {}
    previews: list[Preview] = []
    for e in read_events(Path(run_dir) / "events.jsonl"):
        if not isinstance(e, (Progress, Sample)) or (until_step is not None and e.step > until_step):
            continue
        if isinstance(e, Progress):
            by_step[e.step] = (e.step, e.loss, e.smoothed_loss, e.lr)
        elif Path(e.path).is_file():
            previews.append((e.step, e.prompt, e.path))
    return RunTrace(tuple(by_step[k] for k in sorted(by_step)), tuple(dict.fromkeys(previews)))


def read_last_run(project_dir: Path) -> LastRun | None:
    """The newest run of the project with its chart and previews, or None when it has never trained."""
    newest = run_dirs(project_dir)[:1]
    return LastRun(read_run(newest[0]), read_trace(newest[0])) if newest else None
