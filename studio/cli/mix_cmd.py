"""`lora-studio mix A.safetensors:0.8 B.safetensors:-0.3 [--rank R] -o OUT.safetensors` (merged LoRA),
`lora-studio mix … --bake BASE -o OUT.safetensors` (checkpoint with the LoRAs baked in).

Each LoRA is `PATH[:STRENGTH][:unet=X][:te=Y][:blocks=PRESET|w,w,…]`. The output path is the last line
printed, as for `train` and `demo`, so scripts can pick it up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WORST_SHOWN = 5
MAX_RANK = 1024  # the trainer's own limit ([network] rank)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mix", help="merge LoRAs into one LoRA, or bake them into a checkpoint",
        description="Blend LoRAs at given strengths. Without --rank the ranks are concatenated (exact); with "
                    "--rank R each module is re-factorised by SVD to rank R and the error is reported. With --bake "
                    "the LoRAs are applied to a base model and a new checkpoint is written.")
    p.add_argument("loras", nargs="+", metavar="LORA[:STRENGTH]",
                   help="a LoRA file and its strength (default 1); options :unet=X :te=Y :blocks=PRESET|w,w,…")
    p.add_argument("-o", "--out", required=True, help="output file (.safetensors); for --bake a name without "
                                                      ".safetensors writes a diffusers folder")
    p.add_argument("--rank", type=int, default=None, help="SVD to this rank instead of concatenating ranks")
    p.add_argument("--bake", metavar="BASE", default=None, help="base model (folder or .safetensors) to bake into")
    p.add_argument("--base", metavar="MODEL", default=None,
                   help="for a merged LoRA: check it against this base model (and needed for DoRA LoRAs)")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default=None,
                   help="precision of the output (merged LoRA: fp16; baked: the base model's)")
    p.set_defaults(func=run)


def _sources(specs: list[str]):
    from studio.mix.recipe import LoraCache, load_sources
    from studio.mix.request import parse_entry, with_blocks

    cache = LoraCache()
    entries = []
    for entry, blocks in map(parse_entry, specs):
        family = cache.get(entry.path).family
        entries.append(with_blocks(entry, blocks, "sd1" if family == "unknown" else family)
                       if blocks else entry)
    return load_sources(entries, cache)


def run(args: argparse.Namespace) -> int:
    from studio.errors import ConfigError

    if args.bake and args.rank is not None:
        raise ConfigError("--rank applies to merged LoRAs; a bake applies every LoRA exactly")
    if args.rank is not None and not 1 <= args.rank <= MAX_RANK:
        raise ConfigError(f"--rank is {args.rank}, expected a whole number between 1 and {MAX_RANK}")
    sources = _sources(args.loras)
    for s in sources:
        print(f"{s.file_name}: {s.title}, strength {s.entry.strength:g}, family {s.lora.family}", file=sys.stderr)
    if args.bake:
        return _bake(args, sources)
    return _merge(args, sources)


def _bake(args, sources) -> int:
    from studio.mix.bake import bake

    print(f"loading {args.bake} …", file=sys.stderr)
    result = bake(args.bake, sources, args.out, dtype=args.dtype)
    print(f"baked {len(sources)} LoRA(s) into {result.layers_changed} layer(s) ({result.layout})", file=sys.stderr)
    print(result.path)
    return 0


def _merge(args, sources) -> int:
    from studio.mix.export import export_merged

    base_weight, model_family = _base_weights(args.base, sources) if args.base else (None, None)
    result = export_merged(sources, args.out, rank=args.rank, dtype=args.dtype or "fp16",
                           base_weight=base_weight, model_family=model_family)
    merged = result.merge
    ranks = sorted({m.rank for m in merged.lora.modules.values()})
    print(f"{merged.method}: {len(merged.lora.modules)} module(s), rank {', '.join(map(str, ranks))}", file=sys.stderr)
    if args.rank is not None or any(r.method == "svd" for r in merged.reports):
        worst = sorted(merged.reports, key=lambda r: r.rel_error, reverse=True)[:WORST_SHOWN]
        print(f"relative error: overall {merged.overall_error:.4f}, worst modules:", file=sys.stderr)
        for r in worst:
            print(f"  {r.rel_error:.4f}  {r.name}", file=sys.stderr)
    if result.report is not None:
        for line in result.report.lines(notes=True):
            print(line, file=sys.stderr)
    print(Path(result.path))
    return 0


def _base_weights(base: str, sources):
    from studio.mix.targets import check_fits, model_targets
    from studio.models.load import load_components

    components = load_components(Path(base))
    targets = model_targets(components.unet, components.text_encoders, components.family)
    for s in sources:
        check_fits(s.lora, s.file_name, targets, components.family)
    return (lambda name: targets[name].module.weight.detach()), components.family
