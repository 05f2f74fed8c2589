"""`lora-studio queue add | list | remove | move | retry | clear | run`: train several projects unattended.

`queue run` trains the entries in this process, not in a worker process per entry: a kill (Ctrl+C twice,
the task manager, a power cut) then stops everything at once, leaving no child training into a run folder
that the next `queue run` would resume too. Exports and checkpoints are written atomically, and the queue
file records each entry's run folder before its first step, so the next run resumes the interrupted entry
from its last checkpoint.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

from studio.train_queue import QueueEntry, TrainPlan, TrainQueue

ID_HELP = "the entry's number (see `queue list`)"


def register(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--queue", type=Path, metavar="FILE",
                        help="the queue file (default: queue.json in LoRA Studio's data folder)")
    p = sub.add_parser("queue", help="queue several projects and train them one after another, unattended",
                       description="A list of training runs kept in a file: add projects, reorder them, then "
                                   "`queue run` trains each in turn. A run that was cut off (crash, kill, power "
                                   "cut) resumes from its last checkpoint the next time.")
    q = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)

    def action(name: str, func, help_: str, **kwargs) -> argparse.ArgumentParser:
        parser = q.add_parser(name, parents=[common], help=help_, **kwargs)
        parser.set_defaults(func=func)
        return parser

    add = action("add", add_cmd, "add project files at the end of the queue")
    add.add_argument("projects", nargs="+", type=Path, metavar="PROJECT", help="project.toml file(s)")
    add.add_argument("--snapshot", action="store_true",
                     help="train the settings as they are now; without it, the file is read when its turn comes")

    action("list", list_cmd, "show the entries in order, with their state and export").add_argument(
        "--json", action="store_true", help="machine-readable output")
    action("remove", remove_cmd, "take an entry off the queue (its files stay)").add_argument(
        "id", type=int, help=ID_HELP)

    mv = action("move", move_cmd, "move an entry to another place in the order")
    mv.add_argument("id", type=int, help=ID_HELP)
    mv.add_argument("position", type=int, help="its new place: 1 is first")
    action("retry", retry_cmd, "queue a failed, stopped or interrupted entry again (it resumes from its last "
                               "checkpoint)").add_argument("id", type=int, help=ID_HELP)
    action("clear", clear_cmd, "forget the finished entries (their exports stay)")

    run = action("run", run_cmd, "train every queued entry in order",
                 description="Train every queued entry in order, resuming an interrupted one first. Prints "
                             "one line per entry as it ends, with its exported file. Exit code 0 when all "
                             "succeeded. Ctrl+C stops the current entry cleanly (it saves) and the queue.")
    run.add_argument("--stop-on-error", action="store_true", help="stop at the first entry that fails")
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def add_cmd(args: argparse.Namespace) -> int:
    for entry in TrainQueue(args.queue).add(args.projects, snapshot=args.snapshot):
        print(f"queued #{entry.id} {entry.label}: {entry.project}")
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    queue = TrainQueue(args.queue)
    entries, active = queue.entries(), queue.runner_active()
    if args.json:
        rows = [{"id": e.id, "project": e.project, "label": e.label, "state": e.shown_state(active),
                 "run_dir": e.run_dir, "export": e.export, "error": e.error, "snapshot": bool(e.config_toml),
                 "resumable_step": (e.checkpoint() or (None,))[0]} for e in entries]
        print(json.dumps(rows, indent=1))
        return 0
    if not entries:
        print(f"the queue is empty ({queue.path}); add projects with `lora-studio queue add PROJECT.toml`")
    for position, entry in enumerate(entries, 1):
        print(f"{position}. {entry.describe(active)}")
    return 0


def remove_cmd(args: argparse.Namespace) -> int:
    entry = TrainQueue(args.queue).remove(args.id)
    print(f"removed #{entry.id} {entry.label}")
    return 0


def move_cmd(args: argparse.Namespace) -> int:
    TrainQueue(args.queue).move(args.id, args.position)
    return list_cmd(argparse.Namespace(queue=args.queue, json=False))


def retry_cmd(args: argparse.Namespace) -> int:
    entry = TrainQueue(args.queue).requeue(args.id)
    point = entry.checkpoint()
    print(f"queued #{entry.id} {entry.label} again" + (f" (resumes from step {point[0]})" if point else ""))
    return 0


def clear_cmd(args: argparse.Namespace) -> int:
    print(f"forgot {TrainQueue(args.queue).clear_done()} finished entries")
    return 0


def run_cmd(args: argparse.Namespace) -> int:
    from studio.install_check import require_working_install

    require_working_install()  # `queue` also lists and edits, which work whatever is installed: checked here
    queue = TrainQueue(args.queue)
    failures = 0
    with queue.running():
        while (plan := queue.start_next()) is not None:
            entry = _train_entry(queue, plan, quiet=args.quiet)
            print(_ending_line(entry), flush=True)
            failures += entry.state == "failed"
            if entry.state == "stopped":
                print(f"the queue is stopped; `lora-studio queue retry {entry.id}` and `queue run` continue it "
                      "from where it saved", file=sys.stderr)
                return 130
            if entry.state == "failed" and args.stop_on_error:
                print("stopped at the first failure (--stop-on-error)", file=sys.stderr)
                return 1
    if failures:
        print(f"{failures} entr{'y' if failures == 1 else 'ies'} failed; fix the cause and `lora-studio queue "
              "retry ID`", file=sys.stderr)
    return 1 if failures else 0


def _train_entry(queue: TrainQueue, plan: TrainPlan, *, quiet: bool) -> QueueEntry:
    """Train one entry in this process; returns it as recorded ("stopped" when the user stopped it)."""
    from studio.cli.progress import train_here
    from studio.errors import StudioError

    label = queue.get(plan.entry_id).label
    where = f"resuming from step {plan.start_step}" if plan.resume_from else "starting"
    print(f"#{plan.entry_id} {label}: {where} ({plan.run_dir})", file=sys.stderr, flush=True)
    try:
        finished = train_here(plan.config(), quiet=quiet, project_file=plan.project_file,
                              resume_from=plan.resume_from, run_dir=plan.run_dir)
    except StudioError as exc:
        return queue.fail(plan.entry_id, str(exc), exc.hint)
    finally:
        _free_memory()
    return queue.finish(plan.entry_id, outputs=finished.outputs, stopped=finished.stopped)


def _ending_line(entry: QueueEntry) -> str:
    if entry.state == "done":
        return f"done #{entry.id} {entry.label}: {entry.export}"
    if entry.state == "stopped":
        return f"stopped #{entry.id} {entry.label}: " + (entry.export or "nothing exported yet")
    return f"failed #{entry.id} {entry.label}: {entry.error}" + (f" (hint: {entry.hint})" if entry.hint else "")


def _free_memory() -> None:
    """The next entry starts with the memory the last one held given back (the GPU's cache included)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
