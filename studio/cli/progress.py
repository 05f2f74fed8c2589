"""Drawing a training run's events in a terminal: a progress bar, warnings, and the outputs."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterable
from contextlib import contextmanager

from studio.errors import StudioError
from studio.events import Checkpoint, Event, Failed, Finished, Log, Progress, Sample, Started
from studio.train.control import TrainControl


@contextmanager
def stop_on_ctrl_c(control: TrainControl):
    """First Ctrl+C stops the run cleanly (saving first); a second one interrupts at once."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if control.stop_requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        print("\nstopping after this step and saving… (Ctrl+C again to abort)", file=sys.stderr)
        control.request_stop()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def follow(events: Iterable[Event], *, quiet: bool = False) -> Finished:
    from tqdm import tqdm

    bar = None
    try:
        for event in events:
            if isinstance(event, Started):
                bar = tqdm(total=event.total_steps, initial=event.start_step, unit="step", file=sys.stderr,
                           disable=quiet, dynamic_ncols=True, desc="training")
                if not quiet:
                    tqdm.write(f"run folder: {event.run_dir}", file=sys.stderr)
            elif isinstance(event, Progress) and bar is not None:
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.smoothed_loss:.4f}", lr=f"{event.lr:.2e}", refresh=False)
            elif isinstance(event, Log) and (event.level != "info" or not quiet):
                tqdm.write(f"{event.level}: {event.text}", file=sys.stderr)
            elif isinstance(event, Checkpoint) and not quiet:
                tqdm.write(f"saved step {event.step}: {event.lora_path}", file=sys.stderr)
            elif isinstance(event, Sample) and not quiet:
                tqdm.write(f"preview: {event.path}", file=sys.stderr)
            elif isinstance(event, Failed):
                raise StudioError(event.error, hint=event.hint)
            elif isinstance(event, Finished):
                return event
    finally:
        if bar is not None:
            bar.close()
    raise StudioError("the run ended without finishing")  # pragma: no cover - the engine always ends


def train_here(cfg, *, quiet: bool, **kwargs) -> Finished:
    """Train in this process (`run_training`'s keywords), drawing the run; a first Ctrl+C saves and stops."""
    from studio.train.engine import run_training

    control = TrainControl()
    with stop_on_ctrl_c(control):
        return follow(run_training(cfg, control=control, **kwargs), quiet=quiet)
