"""Is the installed set of libraries one LoRA Studio has been tested with? Checked at start-up.

A library released overnight must not break a user half-way through loading a model (transformers 5.24
refused LoRA adapters without a peft 0.22 that did not exist). The app, the CLI and the worker call
`check_install()` before any heavy import: a version outside pyproject.toml's tested range is a *warning*, a
combination known not to work (`KNOWN_BAD`, and transformers' own minimum peft) or a missing core library an
*error* that stops every run; both name the command that repairs the environment. Only package metadata is
read (no imports), so the check costs milliseconds.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from studio.errors import StudioError
from studio.resources import project_root

DISTRIBUTION = "lora-studio"
# the libraries whose versions decide whether training works; (distribution, name shown to people)
CHECKED: tuple[tuple[str, str], ...] = (
    ("torch", "torch"), ("diffusers", "diffusers"), ("transformers", "transformers"), ("peft", "peft"),
    ("accelerate", "accelerate"), ("PySide6-Essentials", "PySide6"), ("bitsandbytes", "bitsandbytes"),
)
# without these nothing trains; the others are needed only by the window or by one optimizer
CORE = frozenset({"torch", "diffusers", "transformers", "peft", "accelerate"})
SKIP_ENV = "LORA_STUDIO_SKIP_VERSION_CHECK"  # `scripts/test.sh --latest` sets it, to see the libraries' own errors
LOCK_NAME = "requirements.lock"


@dataclass(frozen=True)
class KnownBad:
    """`package` in `versions` does not work unless `needs` is in `needs_versions`."""

    package: str
    versions: str
    needs: str
    needs_versions: str
    consequence: str


_NO_PEFT = "text-encoder and SDXL training and loading LoRAs into a pipeline would fail"
KNOWN_BAD: tuple[KnownBad, ...] = (KnownBad("transformers", ">=5.24", "peft", ">=0.22", _NO_PEFT),)


@dataclass(frozen=True)
class OutOfRange:
    name: str
    installed: str
    tested: str

    def __str__(self) -> str:
        return f"{self.name} {self.installed} (tested: {self.tested})"


@dataclass(frozen=True)
class InstallReport:
    out_of_range: tuple[OutOfRange, ...]
    broken: tuple[str, ...]  # one sentence each: what does not fit together, or what is missing
    repair: str  # the one command that puts the tested versions back

    @property
    def ok(self) -> bool:
        return not self.out_of_range and not self.broken

    def warning(self) -> str | None:
        if not self.out_of_range:
            return None
        listed = "; ".join(str(item) for item in self.out_of_range)
        return (f"untested library versions: {listed}. If something fails, put the tested versions back with: "
                f"{self.repair}")

    def error(self) -> str | None:
        if not self.broken:
            return None
        return f"{'; '.join(self.broken)}. Repair the installation with: {self.repair}"


class BrokenInstallError(StudioError):
    """The installed libraries are known not to work together; nothing may start until they are repaired."""


VersionLookup = Callable[[str], "str | None"]


def installed_version(distribution: str) -> str | None:
    """The one place the check asks for a version: tests replace it to stage a broken installation."""
    return _real_version(distribution)


def check_install(version_of: VersionLookup | None = None) -> InstallReport:
    """`version_of` maps a distribution name to its installed version (default: the installed metadata)."""
    version_of = version_of or installed_version
    tested = tested_ranges()
    out_of_range: list[OutOfRange] = []
    broken: list[str] = []
    installed: dict[str, Version | None] = {}
    for dist, name in CHECKED:
        text = version_of(dist)
        installed[dist.lower()] = version = _parse(text)
        if text is None:
            if name in CORE:
                broken.append(f"{name} is not installed")
            continue
        spec = tested.get(dist.lower())
        if spec is not None and version is not None and not spec.contains(version, prereleases=True):
            out_of_range.append(OutOfRange(name, text, spec_text(spec)))
    reported: set[tuple[str, str]] = set()
    for rule in KNOWN_BAD + tuple(_declared_minimums(version_of)):
        have, need = installed.get(rule.package), installed.get(rule.needs)
        if have is None or need is None or (rule.package, rule.needs) in reported:
            continue
        if SpecifierSet(rule.versions).contains(have, prereleases=True) and \
                not SpecifierSet(rule.needs_versions).contains(need, prereleases=True):
            reported.add((rule.package, rule.needs))
            broken.append(f"{rule.package} {have} needs {rule.needs} {_needed(rule.needs_versions)}, but "
                          f"{rule.needs} {need} is installed ({rule.consequence})")
    return InstallReport(tuple(out_of_range), tuple(broken), repair_command())


def require_working_install(version_of: VersionLookup | None = None) -> InstallReport:
    """The report, after raising `BrokenInstallError` when it has an error. Honours LORA_STUDIO_SKIP_VERSION_CHECK."""
    if os.environ.get(SKIP_ENV) == "1" or getattr(sys, "frozen", False):  # a frozen app carries its own set
        return InstallReport((), (), repair_command())
    report = check_install(version_of)
    if error := report.error():
        raise BrokenInstallError(error)
    return report


def tested_ranges() -> dict[str, SpecifierSet]:
    """pyproject.toml's ranges by lower-case distribution name: from our installed metadata, else the file."""
    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        lines = _pyproject_requirements()
    ranges: dict[str, SpecifierSet] = {}
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        ranges.setdefault(req.name.lower(), req.specifier)
    return ranges


def _pyproject_requirements() -> list[str]:
    path = project_root() / "pyproject.toml"
    if not path.is_file():
        return []
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads(path.read_text(encoding="utf-8-sig")).get("project", {})
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return lines


def repair_command() -> str:
    """`python -m pip install -r requirements.lock` for the interpreter that is running us."""
    python = Path(sys.executable)
    if python.name.lower() == "pythonw.exe":  # the windowed launcher: pip's output needs a console
        python = python.with_name("python.exe")
    lock = project_root() / LOCK_NAME
    if lock.is_file():
        return f'"{python}" -m pip install -r "{lock}"'
    pins = " ".join(f'"{dist}{spec}"' for dist, spec in sorted(tested_ranges().items())
                    if dist in {d.lower() for d, _ in CHECKED} and str(spec))
    return f'"{python}" -m pip install {pins}'.rstrip()


def spec_text(spec: SpecifierSet) -> str:
    """">=4.45, <5.24": lower bounds first, as people read a range."""
    return ", ".join(sorted((str(s) for s in spec), key=lambda s: (not s.startswith(">"), s)))


def _needed(spec: str) -> str:
    """">=0.22" reads as "0.22 or newer"; anything else as the range itself."""
    specs = list(SpecifierSet(spec))
    if len(specs) == 1 and specs[0].operator == ">=":
        return f"{specs[0].version} or newer"
    return spec_text(SpecifierSet(spec))


def _parse(text: str | None) -> Version | None:
    try:
        return Version(text) if text is not None else None
    except InvalidVersion:
        return None


_MIN_PEFT = re.compile(r'^MIN_PEFT_VERSION\s*=\s*["\']([0-9][^"\']*)["\']', re.MULTILINE)


def _declared_minimums(version_of: VersionLookup) -> list[KnownBad]:
    """The minimum peft that the installed transformers declares, read from its source without importing it:
    catches the next release that raises the bar before `KNOWN_BAD` knows about it."""
    if version_of("transformers") != _real_version("transformers"):  # made-up versions: the files would not match
        return []
    found = _transformers_min_peft()
    return [KnownBad("transformers", ">=0", "peft", f">={found}", _NO_PEFT)] if found else []


def _real_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _transformers_min_peft() -> str | None:
    try:
        dist = metadata.distribution("transformers")
    except metadata.PackageNotFoundError:
        return None
    for relative in ("transformers/utils/peft_utils.py", "transformers/integrations/peft.py"):
        path = Path(str(dist.locate_file(relative)))
        try:
            match = _MIN_PEFT.search(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if match and _parse(match.group(1)) is not None:
            return match.group(1)
    return None
