"""`lora-studio inspect FILE [--json]`: what a LoRA file is, before you mix or load it.

Exit status 0 when the file can be used as it is, 3 when it was read but has problems (unknown keys,
NaN/Inf weights, bad shapes — all listed), 2 when it cannot be read at all (the usual one-line error).
"""

from __future__ import annotations

import argparse

EXIT_PROBLEMS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("inspect", help="show a LoRA's base family, ranks, targets and metadata",
                              description="Read a LoRA file (kohya, peft/diffusers, LyCORIS LoHa/LoKr) and "
                                          "describe it.")
    p.add_argument("file", help="the LoRA .safetensors file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--loaders", action="store_true",
                   help="explain, for each WebUI/library that cannot load the file as trained, what it does instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.formats.inspect import format_summary, summarize, summary_to_json

    summary = summarize(args.file)
    print(summary_to_json(summary) if args.json else format_summary(summary, loader_notes=args.loaders))
    return EXIT_PROBLEMS if summary.problems else 0
