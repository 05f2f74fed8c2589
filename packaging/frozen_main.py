"""The entry point of the PyInstaller build (`packaging/lora-studio.spec`).

One executable does everything the installed `lora-studio` command does:

- no arguments (a double-click) or `gui [PROJECT] [--demo]`: the window;
- `--studio-worker`: the training worker, which the window starts from this same executable
  (`studio.worker.client.worker_command`), so no Python is needed on the user's machine;
- `--studio-hardware`: one JSON line of what torch sees (`studio.hardware.detect_in_child`: the window's
  process never imports torch);
- anything else (`--version`, `demo --steps 2`, `train …`, `inspect …`): the command line.
"""

from __future__ import annotations

import multiprocessing
import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["--studio-worker"]:
        from studio.worker.process import main as worker_main

        return worker_main()
    if argv[:1] == ["--studio-hardware"]:
        from studio.hardware import main as hardware_main

        return hardware_main()
    if not argv or argv[0] == "gui" or argv[0].endswith(".toml"):
        from ui.app import main as gui_main

        return gui_main(argv[1:] if argv[:1] == ["gui"] else argv)
    from studio.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    multiprocessing.freeze_support()  # before anything else: a spawned child must not rerun main()
    sys.exit(main(sys.argv[1:]))
