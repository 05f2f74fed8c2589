"""A training run that SIGKILLs itself at a chosen point: the child side of `test_kill_worker.py`.

The point is chosen with a Python audit hook (PEP 578) on the real file operations of the engine: the n-th
`os.mkdir` of a checkpoint's temporary folder, the n-th `open` of an export's temporary file, the n-th
rename of either into place, the n-th `shutil.rmtree` of an old checkpoint. The hook sends SIGKILL to its
own process at once, or after a delay (a timer thread), so the kill lands in the middle of the write that
follows. Nothing in the engine is replaced or mocked: the kill interrupts the real code at that point.

Children are forked from a forkserver that has already imported the engine, so each run starts in a fraction
of a second instead of the 4–8 s an import of torch + diffusers takes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path


def _warm_imports() -> None:
    """What a run imports lazily (diffusers' and transformers' model modules, peft, accelerate): done once here,
    in the forkserver, so each forked run starts in about a second instead of spending ten on imports.
    Only imports: no tensor work happens before the fork (OpenMP thread pools do not survive a fork)."""
    from accelerate import Accelerator  # noqa: F401
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: F401
    from peft import LoraConfig  # noqa: F401
    from peft.utils import get_peft_model_state_dict  # noqa: F401
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: F401

    from studio.libraries import quiet_libraries

    quiet_libraries()


@dataclass(frozen=True)
class KillAt:
    event: str  # audit event: "os.mkdir", "open", "os.rename", "shutil.rmtree"
    match: str  # substring of the first path argument (for os.rename: of the source or the destination)
    nth: int = 1  # the n-th matching event
    delay_ms: float = 0.0  # 0: kill inside the hook, before the operation happens
    write_only: bool = True  # for "open": only opens for writing count


def _is_write_open(args: tuple) -> bool:
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


def install(kill: KillAt) -> None:
    seen = [0]
    fired = [False]

    def hook(event: str, args: tuple) -> None:
        if fired[0] or event != kill.event or not args:
            return
        paths = [str(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))] if event == "os.rename" \
            else [str(args[0])]
        if not any(kill.match in p for p in paths):
            return
        if event == "open" and kill.write_only and not _is_write_open(args):
            return
        seen[0] += 1
        if seen[0] != kill.nth:
            return
        fired[0] = True
        if kill.delay_ms <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
        timer = threading.Timer(kill.delay_ms / 1000.0, os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()

    sys.addaudithook(hook)


def prewarm() -> None:
    """Called by the test when it sets up the forkserver (via the preload list, see `warm_preload`)."""
    _warm_imports()


def run(cfg, events_path: str, kill: KillAt | None, resume_from: str | None = None) -> None:
    """Train with `cfg`, appending every event as a JSON line to `events_path`; die at `kill`."""
    from studio.run_folder import event_line
    from studio.train.engine import run_training

    if kill is not None:
        install(kill)
    with open(events_path, "a", encoding="utf-8") as out:
        for event in run_training(cfg, resume_from=resume_from):
            out.write(event_line(event) + "\n")
            out.flush()


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
