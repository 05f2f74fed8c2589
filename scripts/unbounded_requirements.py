"""Print pyproject.toml's requirements with their upper bounds removed, as a uv override file.

Used by `scripts/test.sh --latest` to see what the newest published versions do to the suite before a
user meets them. torch keeps its exact pin: its version decides the CUDA build, and it is raised by hand.
"""

from __future__ import annotations

import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

KEEP_PINNED = {"torch"}


def unbounded(text: str) -> str:
    req = Requirement(text)
    if req.name.lower() not in KEEP_PINNED:
        req.specifier = SpecifierSet(",".join(str(s) for s in req.specifier if s.operator not in ("<", "<=", "==", "~=")))
    return str(req)


def main(path: str) -> int:
    with open(path, "rb") as fh:
        project = tomllib.load(fh)["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    seen: set[str] = set()
    for line in lines:
        out = unbounded(line)
        name = Requirement(line).name.lower()
        if name not in seen:
            seen.add(name)
            print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))
