"""The mixer's worker jobs: preview, strength grid, merged export and bake.

The worker runs one job at a time and forgets it; the preview session must outlive jobs, so it is kept
here, per process: the first preview loads the base model, every later one with the same base (and
device) reuses it. A job for another base replaces it. Each job ends with a `MixResult` carrying the
window's request id, then `Finished`; errors a user can act on arrive as `Failed` via the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.errors import ConfigError
from studio.events import Event, Finished, Log
from studio.mix.grid import GridAxis
from studio.mix.messages import MixResult, entry_from_dict, request_from_dict
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


def drop_session() -> None:
    global _session, _session_key
    with _lock:
        _session, _session_key = None, None


def _required(params: dict[str, Any], key: str) -> Any:
    if key not in params or params[key] in (None, ""):
        raise ConfigError(f"the mixer job is missing `{key}`")
    return params[key]


def _stop(control: Any):
    return (lambda: bool(getattr(control, "stop_requested", False))) if control is not None else None


def preview_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """params: base, request (RenderRequest as a dict), out (PNG path), request_id, device (optional)."""
    base, out = _required(params, "base"), Path(_required(params, "out"))
    request = request_from_dict(_required(params, "request"))
    yield Log(level="info", text=f"preview: {base}")
    session, loaded = session_for(base, params.get("device"))
    layers = session.apply(request.loras)
    image = session.render(request, should_stop=_stop(control))
    if image is None:
        yield Finished(outputs=(), stopped=True)
        return
    from studio.fileio import atomic_write_with

    atomic_write_with(out, lambda tmp: image.save(tmp, format="PNG"))
    summary = ("base model loaded; " if loaded else "") + f"{layers} layer(s) re-patched"
    yield MixResult(kind="preview", request_id=int(params.get("request_id", 0)), path=str(out), summary=summary,
                    layers=layers)
    yield Finished(outputs=(str(out),))


def _axis(data: dict[str, Any] | None) -> GridAxis | None:
    if not data:
        return None
    try:
        return GridAxis(lora=int(data["lora"]), values=tuple(float(v) for v in data["values"]),
                        label=str(data.get("label", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"bad grid axis: {exc}") from None


def grid_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """params: base, request, x {lora, values}, y (optional), out, request_id, device."""
    base, out = _required(params, "base"), Path(_required(params, "out"))
    request = request_from_dict(_required(params, "request"))
    x, y = _axis(_required(params, "x")), _axis(params.get("y"))
    assert x is not None
    session, _ = session_for(base, params.get("device"))
    done: list[int] = []
    result = session.render_grid(request, x, y, should_stop=_stop(control),
                                 on_cell=lambda i, n: done.append(i))
    if result is None:
        yield Finished(outputs=(), stopped=True)
        return
    from studio.fileio import atomic_write_with

    atomic_write_with(out, lambda tmp: result.image.save(tmp, format="PNG"))
    yield MixResult(kind="grid", request_id=int(params.get("request_id", 0)), path=str(out),
                    summary=f"{len(result.cells)} cells")
    yield Finished(outputs=(str(out),))


def export_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """params: loras [entries], out, rank (None: concat), dtype, request_id."""
    from studio.mix.export import export_merged
    from studio.mix.recipe import load_sources

    entries = [entry_from_dict(e) for e in _required(params, "loras")]
    sources = load_sources([e for e in entries if e.enabled])
    rank = params.get("rank")
    result = export_merged(sources, _required(params, "out"), rank=None if rank is None else int(rank),
                           dtype=params.get("dtype") or "fp16")
    merged = result.merge
    summary = f"{merged.method}, {len(merged.lora.modules)} modules"
    if rank is not None:
        summary += f", relative error {merged.overall_error:.2%} overall, {merged.max_error:.2%} worst module"
    if result.report is not None:
        summary += "\n" + "\n".join(result.report.lines(notes=False))
    yield MixResult(kind="export", request_id=int(params.get("request_id", 0)), path=str(result.path),
                    summary=summary, error=merged.overall_error if rank is not None else None,
                    layers=len(merged.lora.modules))
    yield Finished(outputs=(str(result.path),))


def bake_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """params: base, loras, out, dtype (None: the base model's), request_id."""
    from studio.mix.bake import bake
    from studio.mix.recipe import load_sources

    entries = [entry_from_dict(e) for e in _required(params, "loras")]
    yield Log(level="info", text="baking: loading the base model in fp32")
    result = bake(_required(params, "base"), load_sources([e for e in entries if e.enabled]),
                  _required(params, "out"), dtype=params.get("dtype"))
    yield MixResult(kind="bake", request_id=int(params.get("request_id", 0)), path=str(result.path),
                    summary=f"{result.layers_changed} layers changed, {result.layout}", layers=result.layers_changed)
    yield Finished(outputs=(str(result.path),))



def plain_job(params: dict[str, Any], control: Any) -> Iterator[Event]:
    """params: src, out, rank, base (the model it was trained on; needed for DoRA), dtype, request_id.

    The "Save a plain-LoRA copy…" action of the Export boxes: the SVD runs here, never in the window."""
    from studio.formats.reader import read_lora
    from studio.mix.plain import base_weights_from_model, needs_base_model, write_plain_copy

    src, out = Path(_required(params, "src")), Path(_required(params, "out"))
    rank = int(_required(params, "rank"))
    lf = read_lora(src)
    base_weight = None
    if needs_base_model(lf):
        base = params.get("base")
        if not base:
            raise ConfigError(f"{src.name} is a DoRA LoRA: its plain copy needs the base model it was trained on",
                              hint="choose the base model in the settings, then try again")
        yield Log(level="info", text=f"plain copy: loading {base}")
        base_weight = base_weights_from_model(base, lf, src.name)
    copy = write_plain_copy(lf, out, rank, source=src, base_weight=base_weight, dtype=params.get("dtype") or "fp16")
    summary = (f"plain LoRA, rank <= {rank}: relative error {copy.overall_error:.2%} overall, "
               f"{copy.max_error:.2%} worst module")
    yield MixResult(kind="plain", request_id=int(params.get("request_id", 0)), path=str(copy.path), summary=summary,
                    error=copy.overall_error, layers=len(copy.merge.lora.modules))
    yield Finished(outputs=(str(copy.path),))
