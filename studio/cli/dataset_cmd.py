"""`lora-studio check-dataset FOLDER... [--resolution N] [--project DIR] [--json]`: the image check, headless.

Lists every problem the Dataset panel would badge and how many images training will use. Exit status 0
when every image is usable, 3 when some are excluded, 2 when nothing can be read.
"""

from __future__ import annotations

import argparse
import json

EXIT_EXCLUDED = 3
MAX_RESOLUTION = 8192  # the largest bucket side training allows ([dataset] bucket_max_side)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check-dataset", help="check a dataset's images before training",
                              description="Check every image of the folders (and their kohya N_name "
                                          "subfolders) the way training will read them.")
    p.add_argument("folders", nargs="+", help="image folders")
    p.add_argument("--resolution", type=int, default=512, help="training resolution: smaller images are "
                                                               "reported (default 512)")
    p.add_argument("--project", default=None, help="project folder whose dataset.json exclusions apply")
    p.add_argument("--caption-extension", default=".txt", help="caption file extension (default .txt)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.dataset.check import check_images
    from studio.dataset.state import DatasetState, load_state
    from studio.dataset.training import training_scan
    from studio.errors import ConfigError, DatasetError

    if not 0 <= args.resolution <= MAX_RESOLUTION:
        raise ConfigError(f"--resolution is {args.resolution}, expected a whole number between 0 and {MAX_RESOLUTION}")
    state = load_state(args.project) if args.project else DatasetState()
    scan = training_scan(args.folders, caption_extension=args.caption_extension, state=state, duplicates=False)
    missing = [p for p in scan.problems if p.kind == "missing"]
    if missing and len(missing) == len(args.folders):
        raise DatasetError("; ".join(p.message for p in missing), hint="check the folder paths")
    report = check_images(scan.images, min_size=args.resolution)
    problems = [*scan.problems, *report.problems]
    usable = len(scan.images) - len(report.excluded_paths)
    if args.json:
        print(json.dumps({"images": len(scan.images), "usable": usable,
                          "problems": [{"path": str(p.path), "kind": p.kind, "excluded": p.excluded,
                                        "message": p.message} for p in problems]}, indent=1))
    else:
        for p in sorted(problems, key=lambda p: (not p.excluded, str(p.path))):
            print(f"{'excluded ' if p.excluded else 'converted'}  {p.kind:<10}  {p.path}: {p.message}")
        print(f"{usable} of {len(scan.images)} images will be used for training")
    return EXIT_EXCLUDED if usable < len(scan.images) else 0
