"""The one converter between our frozen dataclasses and plain data (JSON lines, TOML tables).

Worker messages, `events.jsonl` lines and the app's settings all go through `to_data` / `from_data`, so one
set of rules decides what a valid value is. msgspec converts (strictly: no "1" for an integer); this adds
what it leaves out: unknown fields are refused at every depth (they mean another version, or data not ours),
errors are in our words with the value's full path ("`mix_grid.request.steps` is "abc", expected an
integer"), and a `__post_init__` check surfaces as the same error. Floats stay Python floats, so a NaN loss
survives `json.dumps` (msgspec's encoder would write null, and a diverged run would look like a gap).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from studio.errors import ConfigError, StudioError

T = TypeVar("T")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class CodecError(ConfigError):
    """Data that does not fit the class it is read as. `path` is where (e.g. `mix_grid.request.steps`)."""

    def __init__(self, message: str, path: str = "", hint: str = "") -> None:
        super().__init__(message, hint)
        self.path = path


def to_data(obj: Any) -> Any:
    """`obj` (a dataclass, or a tuple/list/dict of them) as plain dicts, lists, strings and numbers."""
    return msgspec.to_builtins(obj)


def from_data(data: Any, cls: type[T], *, where: str = "") -> T:
    """`data` read strictly as `cls`; raises CodecError naming the path (prefixed by `where`) of what is wrong."""
    _refuse_unknown_fields(data, cls, where)
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise _translate(str(exc), data, cls, where) from None
    except StudioError as exc:  # a __post_init__ check of ours: msgspec does not say where, so the class does
        raise CodecError(f"{_label(where) + ': ' if where else ''}{exc}", where, exc.hint) from None


def describe(tp: Any) -> str:
    """A type in users' words: "an integer", "a string or null", "one of 'fp16', 'bf16'"."""
    if tp is type(None):
        return "null"
    if _is_union(tp):
        return " or ".join(describe(a) for a in get_args(tp))
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple and get_args(tp) and get_args(tp)[-1] is not Ellipsis:
        return f"a list of {len(get_args(tp))} items"
    if origin in (tuple, list):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in get_type_hints(cls).items() if k in names}


def _label(path: str) -> str:
    return f"`{path}`" if path else "the value"


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _refuse_unknown_fields(data: Any, tp: Any, path: str) -> None:
    """Walk `data` beside its type and raise for the first object with a field its dataclass lacks."""
    if _is_union(tp):
        arms = [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
        if isinstance(data, dict) and len(arms) == 1:
            _refuse_unknown_fields(data, arms[0], path)
        return
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            return  # msgspec says "expected an object"
        hints = _hints(tp)
        if unknown := sorted(str(k) for k in data if k not in hints):
            raise CodecError(f"{_label(path)} has no field(s) {', '.join(unknown)}", path)
        for name, value in data.items():
            _refuse_unknown_fields(value, hints[name], _join(path, name))
        return
    if get_origin(tp) in (tuple, list) and isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            _refuse_unknown_fields(value, _step(data, tp, i)[1], _join(path, i))


def _translate(message: str, data: Any, cls: type, where: str) -> CodecError:
    """msgspec's "Expected `int`, got `str` - at `$.request.steps`" in our words, with the value shown."""
    text, _, at = message.partition(" - at `")
    parts = [(m.group(1) or int(m.group(2))) for m in _PATH_PART.finditer(at.rstrip("`")[1:])] if at else []
    value, tp, path = data, cls, where
    for part in parts:
        value, tp = _step(value, tp, part)
        path = _join(path, part)
    if missing := re.match(r"Object missing required field `(\w+)`", text):
        return CodecError(f"{_label(path)} is missing required field `{missing.group(1)}`", path)
    if text.startswith(("Expected", "Invalid enum value")):
        return CodecError(f"{_label(path)} is {_short(value)}, expected {describe(tp)}", path)
    return CodecError(f"{_label(path)}: {text}", path)  # a ValueError of a __post_init__, already in our words


def _step(value: Any, tp: Any, part: str | int) -> tuple[Any, Any]:
    """One path step down both the data and its type."""
    if _is_union(tp):
        arms = [a for a in get_args(tp) if a is not type(None)]
        tp = arms[0] if len(arms) == 1 else tp
    try:
        value = value[part]
    except (KeyError, IndexError, TypeError):
        value = None
    if dataclasses.is_dataclass(tp) and isinstance(part, str):
        return value, _hints(tp).get(part, Any)
    origin, args = get_origin(tp), get_args(tp)
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return value, args[0] if args else Any
    if origin is tuple and isinstance(part, int) and part < len(args):
        return value, args[part]
    if origin is dict:
        return value, args[1] if args else Any
    return value, Any


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
