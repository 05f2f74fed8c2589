"""The mixer's worker jobs: preview, strength grid, merged export, bake and plain-LoRA copy.

The worker runs one job at a time and forgets it, but the preview session must outlive jobs, so it is kept
here, per process: every preview with the same base (and device) reuses the loaded model; another base
replaces it. Progress arrives as `JobProgress`, each job ends with a `MixResult` carrying the request's id,
then `Finished`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Literal

from studio.errors import ConfigError
from studio.events import Event, Finished, JobProgress, Log
from studio.job_requests import MixBakeRequest, MixExportRequest, MixGridRequest, MixPreviewRequest, PlainCopyRequest
from studio.mix.messages import MixResult
from studio.mix.preview import PreviewSession

_lock = threading.Lock()
_session: PreviewSession | None = None
_session_key: tuple[str, str] | None = None


def session_for(base: str, device: str | None = None) -> tuple[PreviewSession, bool]:
    """The process's preview session for `base` (opened if needed); True when it was just loaded."""
    global _session, _session_key
    key = (str(Path(base).expanduser().resolve()), device or "auto")
    with _lock:
        if _session is not None and _session_key == key:
            return _session, False
        _session = None  # let the old model go before loading the new one
        _session = PreviewSession.open(base, device=device)
        _session_key = key
        return _session, True


def _stop(control: Any) -> Callable[[], bool] | None:
    return (lambda: bool(getattr(control, "stop_requested", False))) if control is not None else None


def _reporting(work: Callable[[Callable[[int, int], None]], Any], request_id: int,
               unit: Literal["steps", "cells"]) -> Generator[JobProgress, None, Any]:
    """Run `work(report)` on a helper thread, yield a `JobProgress` for each `report(done, total)` it makes
    while it runs (a render is one long call into diffusers; its callback cannot yield), and return its
    result. An exception of `work` is raised here, in the job."""
    updates: queue.Queue[tuple[str, Any]] = queue.Queue()
    t0 = time.monotonic()

    def report(done: int, total: int) -> None:
        updates.put(("progress", (done, total)))

    def run() -> None:
        try:
            updates.put(("result", work(report)))
        except BaseException as exc:  # handed to the job's thread, which reports it as Failed
            updates.put(("error", exc))

    threading.Thread(target=run, name=f"mix-{unit}", daemon=True).start()
    while True:
        kind, value = updates.get()
        if kind == "error":
            raise value
        if kind == "result":
            return value
        done, total = value
        eta = (time.monotonic() - t0) / done * (total - done) if done else None
        yield JobProgress(request_id=request_id, done=done, total=total, unit=unit, eta_s=eta)


def _done(job: Any, kind: str, path: Path, summary: str, **fields: Any) -> Iterator[Event]:
    yield MixResult(kind=kind, request_id=job.request_id, path=str(path), summary=summary, **fields)
    yield Finished(outputs=(str(path),))


def _png(job: Any, kind: str, image: Any, summary: str, **fields: Any) -> Iterator[Event]:
    from studio.fileio import atomic_write_with

    out = Path(job.out)
    atomic_write_with(out, lambda tmp: image.save(tmp, format="PNG"))
    yield from _done(job, kind, out, summary, **fields)


def preview_job(job: MixPreviewRequest, control: Any) -> Iterator[Event]:
    yield Log(level="info", text=f"preview: {job.base}")
    session, loaded = session_for(job.base, job.device)
    layers = session.apply(job.request.loras)
    image = yield from _reporting(lambda report: session.render(
        job.request, should_stop=_stop(control), on_step=report), job.request_id, "steps")
    if image is None:
        yield Finished(outputs=(), stopped=True)
        return
    summary = ("base model loaded; " if loaded else "") + f"{layers} layer(s) re-patched"
    yield from _png(job, "preview", image, summary, layers=layers)


def grid_job(job: MixGridRequest, control: Any) -> Iterator[Event]:
    session, _ = session_for(job.base, job.device)
    result = yield from _reporting(lambda report: session.render_grid(
        job.request, job.x, job.y, should_stop=_stop(control), on_cell=report), job.request_id, "cells")
    if result is None:
        yield Finished(outputs=(), stopped=True)
        return
    yield from _png(job, "grid", result.image, f"{len(result.cells)} cells")


def export_job(job: MixExportRequest, control: Any) -> Iterator[Event]:
    from studio.mix.export import export_merged
    from studio.mix.recipe import load_sources

    sources = load_sources([e for e in job.loras if e.enabled])
    result = export_merged(sources, job.out, rank=job.rank, dtype=job.dtype)
    merged = result.merge
    summary = f"{merged.method}, {len(merged.lora.modules)} modules"
    if job.rank is not None:
        summary += f", relative error {merged.overall_error:.2%} overall, {merged.max_error:.2%} worst module"
    summary += "\n" + "\n".join(result.report.lines(notes=False))
    yield from _done(job, "export", result.path, summary, layers=len(merged.lora.modules),
                     error=merged.overall_error if job.rank is not None else None)


def bake_job(job: MixBakeRequest, control: Any) -> Iterator[Event]:
    from studio.mix.bake import bake
    from studio.mix.recipe import load_sources

    yield Log(level="info", text="baking: loading the base model in fp32")
    result = bake(job.base, load_sources([e for e in job.loras if e.enabled]), job.out, dtype=job.dtype)
    yield from _done(job, "bake", result.path, f"{result.layers_changed} layers changed, {result.layout}",
                     layers=result.layers_changed)


def plain_job(job: PlainCopyRequest, control: Any) -> Iterator[Event]:
    """The "Save a plain-LoRA copy…" action of the Export boxes: the SVD runs here, never in the window."""
    from studio.formats.reader import read_lora
    from studio.mix.plain import base_weights_from_model, needs_base_model, write_plain_copy

    src = Path(job.src)
    lf = read_lora(src)
    base_weight = None
    if needs_base_model(lf):
        if not job.base:
            raise ConfigError(f"{src.name} is a DoRA LoRA: its plain copy needs the base model it was trained on",
                              hint="choose the base model in the settings, then try again")
        yield Log(level="info", text=f"plain copy: loading {job.base}")
        base_weight = base_weights_from_model(job.base, lf, src.name)
    copy = write_plain_copy(lf, Path(job.out), job.rank, source=src, base_weight=base_weight, dtype=job.dtype)
    summary = (f"plain LoRA, rank <= {job.rank}: relative error {copy.merge.overall_error:.2%} overall, "
               f"{copy.merge.max_error:.2%} worst module")
    yield from _done(job, "plain", copy.path, summary, error=copy.merge.overall_error,
                     layers=len(copy.merge.lora.modules))
