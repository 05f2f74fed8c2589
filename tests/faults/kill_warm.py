"""Imported by the kill tests' forkserver before it forks any run (see `kill_child._warm_imports`)."""

from tests.faults.kill_child import prewarm

prewarm()
