"""Several processes, one run: `accelerate launch --num_processes N -m studio.cli train PROJECT.toml`.

Every process runs the engine on its own device (DDP averages the gradients; each takes `chunk[rank::world]`
of a batch). The main process names the run folder and tells the others; only it writes files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch


def process_state():
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def shared_path(state, make: Callable[[], Path]) -> Path:
    if state.num_processes == 1:
        return make()
    from accelerate.utils import broadcast_object_list

    box = [str(make()) if state.is_main_process else None]
    broadcast_object_list(box, from_process=0)
    return Path(box[0])
