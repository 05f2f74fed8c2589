"""`lora-studio train`'s config flags, generated from `studio.config`: one per field, plus `--set`.

Only the older short names (`--steps`, `--rank`, `--data`…) are listed by hand; the help is the form's
tooltip, word for word. Every value reaches the config as the text the user typed (`parse_text`, as the
form's line edits do), so a wrong value gets the same message on the command line as in the form.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from studio.config import INPUT_PATH_FIELDS, SECTIONS, ProjectConfig, build_section
from studio.errors import ConfigError, Problem
from studio.field_info import SECTION_TITLES, FieldInfo, all_fields, field_choices, field_help, field_info, parse_text

#: the flags `lora-studio train` had before they were generated, still accepted beside the new names
LEGACY_NAMES: dict[tuple[str, str], str] = {
    ("model", "path"): "--model", ("dataset", "folders"): "--data", ("schedule", "max_steps"): "--steps",
    ("network", "rank"): "--rank", ("network", "alpha"): "--alpha", ("dataset", "resolution"): "--resolution",
    ("schedule", "batch_size"): "--batch-size", ("optimizer", "unet_lr"): "--lr", ("output", "directory"): "--out",
    ("output", "name"): "--name",
}
#: fields holding paths: resolved against the current folder (a project file's own paths are relative to it)
PATH_FIELDS = frozenset({*INPUT_PATH_FIELDS, ("output", "directory")})


def _dest(info: FieldInfo) -> str:
    return f"cfg__{info.section}__{info.key}"


def _is_list(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section in SECTIONS:
        group = parser.add_argument_group(f"{SECTION_TITLES[section]} ([{section}] in the project file)")
        for info in (i for i in all_fields() if i.section == section):
            names = [info.flag] + ([LEGACY_NAMES[(section, info.key)]] if (section, info.key) in LEGACY_NAMES else [])
            help_ = field_help(section, info.key).replace("%", "%%")  # escaped for argparse's %-formatting
            kwargs: dict[str, Any] = {"dest": _dest(info), "help": help_, "default": None}
            text = "PATH" if (section, info.key) in PATH_FIELDS else "TEXT"
            if info.type is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif _is_list(info.type):
                kwargs.update(action="append", metavar=text)
            elif get_origin(info.type) is tuple:
                kwargs.update(nargs=len(get_args(info.type)), metavar="X")
            elif choices := field_choices(info.type):
                kwargs["metavar"] = "{" + ",".join(choices) + "}"
            else:
                kwargs["metavar"] = {int: "N", float: "X"}.get(info.type, text)
            group.add_argument(*names, **kwargs)
    parser.add_argument("--set", dest="set_values", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="set any project-file field, e.g. --set optimizer.betas=[0.9,0.99] or "
                             "--set sampling.prompts='[\"a photo\"]' (the value is read as TOML, else as text)")


@dataclass(frozen=True)
class Override:
    section: str
    key: str
    value: Any


def _value(info: FieldInfo, raw: Any) -> Any:
    if isinstance(raw, list):
        item = str if _is_list(info.type) else get_args(info.type)[0]
        return [_value(FieldInfo(info.section, info.key, item, info.meta), v) for v in raw]
    if isinstance(raw, str):
        if (info.section, info.key) in PATH_FIELDS and raw.strip():
            return str(Path(raw).expanduser().resolve())
        return parse_text(raw, info.type)
    return raw


def _set_value(text: str) -> tuple[FieldInfo, Any]:
    name, eq, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not eq or not dot:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. --set network.rank=32")
    if section not in SECTIONS:
        raise ConfigError(f"--set {text!r}: unknown section [{section}]; known sections: {', '.join(SECTIONS)}",
                          section=section, key=key)
    try:
        info = field_info(section, key)
    except KeyError:
        build_section(section, {key: raw}, getattr(ProjectConfig(), section), "--set")  # names the typo
        raise  # pragma: no cover - build_section raised
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(value, str):
        value = parse_text(value, info.type)
    return info, value


def overrides(args: argparse.Namespace) -> list[Override]:
    flags = [(info, _value(info, raw)) for info in all_fields()
             if (raw := getattr(args, _dest(info), None)) is not None]
    given = [*flags, *map(_set_value, args.set_values)]
    return [Override(info.section, info.key, value) for info, value in given]


def apply_overrides(cfg: ProjectConfig, given: list[Override]) -> tuple[ProjectConfig, list[Problem]]:
    """`cfg` with every valid override applied, and the problem of each one that is not (all of them, so the
    user fixes the command line in one go)."""
    problems: list[Problem] = []
    for o in given:
        try:
            section = build_section(o.section, {o.key: o.value}, getattr(cfg, o.section), "command line")
        except ConfigError as exc:
            problems.extend(exc.problems or [Problem(o.section, o.key, str(exc), exc.hint)])
            continue
        cfg = cfg.with_section(o.section, **{o.key: getattr(section, o.key)})
    return cfg, problems
