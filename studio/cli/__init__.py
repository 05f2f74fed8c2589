"""`lora-studio`: the command line. Each subcommand lives in its own module with `register(subparsers)`.

Errors the user can fix (`StudioError`) print one line (and a hint) and exit 2; anything else is a bug
and prints a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from studio import __version__

COMMANDS: tuple[str, ...] = ("train_cmd", "queue_cmd", "demo_cmd", "inspect_cmd", "mix_cmd", "plain_cmd",
                             "dataset_cmd", "gui_cmd")
# the commands that load models and train or mix: a broken combination of libraries stops them before they start
NEEDS_TRAINING_LIBRARIES = frozenset({"train", "demo", "mix", "plain"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lora-studio", description="Train and mix Stable Diffusion LoRAs.")
    parser.add_argument("--version", action="version", version=f"lora-studio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"studio.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from studio.errors import StudioError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing we run may reach a model hub
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    _bytes_safe_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # no subcommand: open the window, as a double-click does
        from studio.cli import gui_cmd

        args.func = gui_cmd.run
    try:
        _check_install(args.command)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit, where Python would print its own complaint
        return code
    except BrokenPipeError:  # `lora-studio inspect --json x | head -c 1`: the reader has all it wanted
        _quiet_stdout()
        return 0
    except StudioError as exc:
        _print_error(exc)
        if args.debug:
            raise
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line unless --debug
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _print_error(exc: BaseException) -> None:
    """`error: …` and `hint: …` lines; a ConfigError listing several problems prints each with its hint."""
    problems = getattr(exc, "problems", ())
    if len(problems) > 1:
        for line, problem in zip(str(exc).splitlines(), problems):
            print(f"error: {line}", file=sys.stderr)
            _print_hint(problem.hint or _where(problem.message, problem.section, problem.key))
        return
    print(f"error: {exc}", file=sys.stderr)
    message = problems[0].message if problems else str(exc)
    _print_hint(getattr(exc, "hint", "") or _where(message, getattr(exc, "section", ""), getattr(exc, "key", "")))


def _print_hint(hint: str) -> None:
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def _where(message: str, section: str, key: str) -> str:
    """Where a config field is set from here (its flag, or its line in the project file), for a message that
    does not name its field ("choose a base model…"; "[network] alpha is -5…" names it already)."""
    from studio.field_info import field_info

    if not section or message.startswith("["):
        return ""
    try:
        flag = field_info(section, key).flag
    except KeyError:
        return ""
    return f"set it with {flag}, or [{section}] {key} in the project file"


def _bytes_safe_stdout() -> None:
    """A path that is not UTF-8 (a Linux file name's raw bytes) printed as the output line: as those bytes on
    stdout (what a script needs to open it), escaped on stderr; never a UnicodeEncodeError after the work."""
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        if stream is not sys.__stdout__ and stream is not sys.__stderr__:
            continue  # someone else's stream (a test's capture, an embedding app): not ours to change
        with contextlib.suppress(AttributeError, ValueError, OSError):  # a non-text stream (tests, embedding)
            stream.reconfigure(errors=errors)


def _quiet_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush of a closed pipe raises nothing."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no real file descriptor (captured)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _check_install(command: str | None) -> None:
    """Untested library versions: one warning line. Versions known not to work: refuse the commands that
    need them. The window shows the same report in a dialog; `inspect` and `dataset` only read files, so
    they go ahead with a warning either way."""
    from studio.install_check import SKIP_ENV, check_install, require_working_install

    if command in (None, "gui") or os.environ.get(SKIP_ENV) == "1":
        return
    if command in NEEDS_TRAINING_LIBRARIES:
        report = require_working_install()
    else:
        report = check_install()
        if report.error():
            print(f"warning: {report.error()}", file=sys.stderr)
    if report.warning():
        print(f"warning: {report.warning()}", file=sys.stderr)
