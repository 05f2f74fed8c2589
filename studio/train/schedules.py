"""Learning-rate schedules (diffusers' `get_scheduler`), with warm-up given in steps or as a ratio.
Schedule-free optimizers make their own schedule: they get a constant LR and the warm-up themselves.
"""

from __future__ import annotations

import math

from studio.config import ScheduleConfig


def warmup_steps(sched: ScheduleConfig) -> int:
    if sched.warmup_ratio > 0:
        return math.ceil(sched.warmup_ratio * sched.max_steps)
    return sched.warmup_steps


def make_lr_scheduler(optimizer, sched: ScheduleConfig, num_processes: int, *, schedule_free: bool = False):
    from diffusers.optimization import get_scheduler

    warmup = warmup_steps(sched)
    name = sched.lr_scheduler
    if schedule_free:
        name, warmup = "constant", 0
    elif name == "constant" and warmup > 0:
        name = "constant_with_warmup"  # plain `constant` would ignore the warm-up
    # accelerate steps a prepared scheduler once per process, hence the scaling (as in diffusers' recipe)
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup * num_processes,
                         num_training_steps=sched.max_steps * num_processes, num_cycles=sched.lr_cycles,
                         power=sched.lr_power)
