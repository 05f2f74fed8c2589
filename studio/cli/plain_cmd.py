"""`lora-studio plain FILE --rank R -o OUT.safetensors [--base MODEL]`: a plain-LoRA copy any loader reads.

For a file some WebUI cannot render as trained (DoRA in A1111, LoHa/LoKr/DoRA in diffusers and
sd-scripts: `lora-studio inspect --loaders`). A DoRA file's change depends on its base model's weights,
hence `--base`. The output path is the last line printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WORST_SHOWN = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plain", help="write a plain-LoRA copy (SVD of the full ΔW) that every WebUI loads as trained",
        description="Refactor a LoRA's full ΔW (LoHa, LoKr, Tucker LoCon, DoRA with its magnitude) by SVD into a "
                    "plain LoRA of the given rank, and report the relative error.")
    p.add_argument("file", help="the LoRA .safetensors file")
    p.add_argument("--rank", type=int, required=True, help="rank of the copy (higher: closer, bigger)")
    p.add_argument("-o", "--out", required=True, help="output file (.safetensors)")
    p.add_argument("--base", metavar="MODEL", default=None,
                   help="the base model (folder or .safetensors) the LoRA was trained on; needed for DoRA")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16", help="precision of the copy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.errors import ConfigError
    from studio.formats.reader import read_lora
    from studio.mix.plain import base_weights_from_model, needs_base_model, write_plain_copy

    if args.rank < 1:
        raise ConfigError(f"--rank must be at least 1 (got {args.rank})")
    source = Path(args.file)
    lf = read_lora(source)
    base_weight = None
    if args.base:
        print(f"loading {args.base} ...", file=sys.stderr)
        base_weight = base_weights_from_model(args.base, lf, source.name)
    elif needs_base_model(lf):
        raise ConfigError(f"{source.name} is a DoRA LoRA: its change depends on the base model's weights",
                          hint="give the model it was trained on with --base MODEL")
    copy = write_plain_copy(lf, args.out, args.rank, source=source, base_weight=base_weight, dtype=args.dtype)
    print(f"plain LoRA, rank <= {copy.rank}: {len(copy.merge.lora.modules)} module(s); relative error "
          f"{copy.merge.overall_error:.4f} overall, {copy.merge.max_error:.4f} worst module", file=sys.stderr)
    for r in sorted(copy.merge.reports, key=lambda r: r.rel_error, reverse=True)[:WORST_SHOWN]:
        print(f"  {r.rel_error:.4f}  {r.name}", file=sys.stderr)
    for line in copy.report.lines(notes=False):
        print(line, file=sys.stderr)
    print(copy.path)
    return 0
