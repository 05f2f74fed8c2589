"""The first look at a base-model path, before any library opens it: is it a file or folder we can load?

Handed a named pipe, diffusers and transformers block for ever on the open; handed `/dev/zero` they read
until memory runs out; handed a device or a socket where a folder is expected they fall through to
"couldn't connect to huggingface.co" — in an app that never goes online; a half-written `config.json`
surfaces as `JSONDecodeError`/`IndexError`. Here each becomes a ModelLoadError that names the file and says
what to choose instead.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from studio.errors import ModelLoadError
from studio.models.safetensors_header import read_safetensors_header
from studio.safe_read import describe, kind_of, read_capped, stat_path

HINT = "pick a diffusers model folder (with model_index.json) or a .safetensors checkpoint file"
_INCOMPLETE = "the model folder is incomplete; copy or download it again"
_DAMAGED = "the model folder is damaged; copy or download it again"
#: model_index.json and the parts' config.json files are a few kilobytes
CONFIG_LIMIT = 4 * 2**20
#: the parts of a diffusers folder whose config the loader reads, and the file it reads
PART_CONFIGS = {"scheduler": "scheduler_config.json", "unet": "config.json", "vae": "config.json",
                "text_encoder": "config.json", "text_encoder_2": "config.json"}


def read_config(path: Path, what: str) -> dict[str, Any]:
    if not os.path.lexists(path):
        raise ModelLoadError(f"{what}: {path.name} is missing ({path})", hint=_INCOMPLETE)
    raw = read_capped(path, what, limit=CONFIG_LIMIT, error=ModelLoadError, hint=HINT)
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a BOM, as some editors save, is fine
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelLoadError(f"{what}: {path} is not valid JSON (truncated or damaged)",
                             hint=_DAMAGED) from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{what}: {path} holds {type(data).__name__}, not a JSON object", hint=_DAMAGED)
    return data


def present_parts(index: dict[str, Any], folder: Path) -> set[str]:
    """The parts model_index.json lists with a class (`[library, class]`; `[null, null]` means absent)."""
    parts = set()
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, (list, tuple)) or list(entry) == [None, None]:
            continue
        if len(entry) != 2 or not all(isinstance(x, str) for x in entry):
            raise ModelLoadError(f"{folder / 'model_index.json'}: the entry `{name}` is {json.dumps(entry)[:80]}, "
                                 "expected [library, class] (e.g. [\"diffusers\", \"UNet2DConditionModel\"])",
                                 hint=_DAMAGED)
        parts.add(name)
    return parts


WEIGHT_SUFFIXES = (".safetensors", ".bin")
#: the parts that hold weights (the scheduler and tokenizers hold only configs)
WEIGHT_PARTS = frozenset({"unet", "vae", "text_encoder", "text_encoder_2"})


def _check_part_files(part: Path) -> None:
    """Every file in a part folder is a regular file (a FIFO weight file would block the loader for ever, a
    huge one of zeros exhaust the memory), each .safetensors header is sound, and a weights part has weights."""
    try:
        entries = sorted(os.scandir(part), key=lambda e: e.name)
    except OSError as exc:
        raise ModelLoadError(f"{part}: cannot read the folder ({exc.strerror})", hint=HINT) from None
    weights = 0
    for entry in entries:
        is_weights = entry.name.endswith(WEIGHT_SUFFIXES)
        try:
            mode = os.stat(entry.path).st_mode
        except OSError:
            raise ModelLoadError(f"{entry.path} is {describe(entry.path)}", hint=HINT) from None
        if not stat.S_ISREG(mode) and not (stat.S_ISDIR(mode) and not is_weights):
            raise ModelLoadError(f"{entry.path} is {kind_of(mode)}, not a model file", hint=HINT)
        if is_weights:
            weights += 1
            if entry.name.endswith(".safetensors"):
                read_safetensors_header(Path(entry.path))  # reads the header only; ModelLoadError in our words
    if part.name in WEIGHT_PARTS and not weights:
        raise ModelLoadError(f"{part}: no weights file (.safetensors or .bin) in the model's `{part.name}` folder",
                             hint=_INCOMPLETE)


def check_diffusers_folder(folder: Path) -> dict[str, Any]:
    if not os.path.lexists(folder / "model_index.json"):
        raise ModelLoadError(f"{folder}: not a diffusers model folder (no model_index.json)",
                             hint="choose the folder that contains model_index.json, or a .safetensors file")
    index = read_config(folder / "model_index.json", "base model index")
    parts = present_parts(index, folder)
    for name, config in PART_CONFIGS.items():
        if name in parts or name in ("unet", "vae", "scheduler", "text_encoder"):
            part = folder / name
            if not part.is_dir():
                raise ModelLoadError(f"{folder}: the model has no `{name}` folder", hint=_INCOMPLETE)
            read_config(part / config, f"base model {name}")
            _check_part_files(part)
    return index


def check_model_path(path: Path) -> None:
    st = stat_path(path, "base model", ModelLoadError, HINT)
    if stat.S_ISDIR(st.st_mode):
        check_diffusers_folder(path)
    elif not stat.S_ISREG(st.st_mode):
        raise ModelLoadError(f"base model {path} is {kind_of(st.st_mode)}, not a model file or folder", hint=HINT)
    elif not os.access(path, os.R_OK):
        raise ModelLoadError(f"base model {path}: cannot read it (permission denied)", hint=HINT)
