"""Turning any exception inside the worker into a `Failed` event a person can act on.

The engine reports its own errors; this covers the rest (a job's import, a job without its own handling, an
OOM outside the loop), so the window always gets a message and a hint, never a silent death.
"""

from __future__ import annotations

import traceback

from studio.errors import StudioError
from studio.events import Failed

GPU_OOM_HINT = ("the GPU ran out of memory: turn on gradient checkpointing (Schedule), lower the batch size or "
                "the training resolution, or close other programs that use the GPU; then resume from the last "
                "checkpoint")
RAM_OOM_HINT = ("the computer ran out of memory (RAM): close other programs, lower the batch size or the "
                "resolution; then resume from the last checkpoint")
BUG_HINT = "this is a bug in LoRA Studio or a library; the traceback is in the log. The last checkpoint can be resumed"


def failed_from_exception(exc: BaseException) -> Failed:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = str(exc)
    if isinstance(exc, StudioError):
        return Failed(error=text, hint=exc.hint, traceback=tb)
    if type(exc).__name__ == "OutOfMemoryError" or ("out of memory" in text.lower()
                                                     and any(gpu in text for gpu in ("CUDA", "HIP", "MPS"))):
        return Failed(error=f"out of GPU memory ({text.splitlines()[0] if text else type(exc).__name__})",
                      hint=GPU_OOM_HINT, traceback=tb)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text:
        return Failed(error="out of memory", hint=RAM_OOM_HINT, traceback=tb)
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return Failed(error=str(exc), hint="check that the file or folder exists and can be read", traceback=tb)
    return Failed(error=f"{type(exc).__name__}: {exc}", hint=BUG_HINT, traceback=tb)
