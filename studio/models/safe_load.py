"""Reading weight files without trusting them, before any tensor is allocated.

A `.safetensors` header that lies would make a reader allocate or read garbage, so it is checked first
(`studio.models.safetensors_header`). A pickled `.ckpt`/`.pt`/`.bin` can run code while it is unpickled, so
only torch's weights-only unpickler ever opens one, and a file that needs more than tensors and plain
containers is refused. `load_state_dict` is the one entry point every loader uses.
"""

from __future__ import annotations

import pickle
import re
import struct
import zipfile
from pathlib import Path

import torch

from studio.errors import ModelLoadError
from studio.models.base_files import weights_kind
from studio.models.ckpt_scan import flat_tensors, not_a_checkpoint, refused_import, torch_container
from studio.models.safetensors_header import read_safetensors_header


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The library takes only UTF-8 paths (Linux names are bytes): a file whose name is not UTF-8 is read as
    bytes and parsed from them."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    path = Path(path)
    header = read_safetensors_header(path)
    try:
        if not any("\ud800" <= c <= "\udfff" for c in str(path)):  # only surrogates have no UTF-8 form
            tensors = load_file(str(path), device="cpu")
        else:
            with open(path, "rb") as fh:
                tensors = load(fh.read(header.file_bytes + 1))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{path.name}: cannot read the tensors ({exc})",
                             hint="the file may be damaged; download it again") from None
    return tensors, header.metadata


def load_pickled(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    container = torch_container(path)
    if container is None:
        raise not_a_checkpoint(path)
    try:
        # mmap keeps multi-GB checkpoints out of memory until a tensor is used; only the zip format has it
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=container == "zip")
    except pickle.UnpicklingError as exc:
        raise refused_import(path, _pickle_reason(exc)) from None
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile, struct.error):
        # torch's own text here names its internals (PytorchStreamReader, record offsets): ours says what to do
        raise not_a_checkpoint(path) from None
    return flat_tensors(path, obj, torch.Tensor)


def _pickle_reason(exc: BaseException) -> str:
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it asks to import `{found.group(1)}`"
    found = re.search(r"Unsupported operand (\d+)", text)
    if found:
        return f"it uses pickle instruction {found.group(1)}, which plain tensors never need"
    return "it holds objects other than tensors"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    return load_with_metadata(path)[0]


def load_with_metadata(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """`load_state_dict` plus the file's string metadata (empty for pickled files)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"file not found: {path}")
    kind = weights_kind(path)  # by suffix, else sniffed, so a renamed file still works
    if kind == "safetensors":
        return load_safetensors(path)
    if kind == "pickle":
        return load_pickled(path), {}
    raise ModelLoadError(f"{path.name}: not a weights file (neither safetensors nor a PyTorch checkpoint)",
                         hint="choose a .safetensors or .ckpt model file")
