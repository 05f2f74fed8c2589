"""Reading weight files without trusting them.

Model files come from model sites, so two kinds of harm are guarded against here, before any tensor is
allocated:

- a `.safetensors` header that lies (offsets past the end, overlapping tensors, sizes that do not match
  shape × dtype, a header claiming gigabytes) would make a reader allocate or read garbage; we check every
  entry against the file's real size first and say exactly what is wrong;
- a pickled `.ckpt`/`.pt`/`.bin` can run code while it is unpickled; we only ever use torch's
  weights-only unpickler, and a file that needs more than tensors and plain containers is refused with a
  message that suggests converting it to safetensors with a tool the user trusts.

`load_state_dict(path)` is the one entry point every loader uses (base models, LoRAs, VAEs).
"""

from __future__ import annotations

import json
import math
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.errors import ModelLoadError, UnsafeFileError

from studio.models.base_files import MAX_HEADER_BYTES, PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES, sniff, weights_kind

# bytes per element for every dtype safetensors can hold that torch can load
DTYPE_SIZES: dict[str, int] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "C64": 8,
}

_CONVERT_HINT = ("convert it to .safetensors with a tool you trust (or download the .safetensors version "
                 "of the model), then choose that file")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; offsets are relative to the start of the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: every entry lies inside the file, none overlap, all sizes add up."""

    path: Path
    header_bytes: int
    data_bytes: int
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def file_bytes(self) -> int:
        return 8 + self.header_bytes + self.data_bytes


def is_safetensors_path(path: Path) -> bool:
    return path.suffix.lower() in SAFETENSORS_SUFFIXES


def is_pickle_path(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def read_safetensors_header(path: str | Path) -> SafetensorsHeader:
    """Parse and validate a safetensors header, reading only the header bytes."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise ModelLoadError(f"{path.name}: only {size} bytes long, too short to be a safetensors file",
                                     hint="the file is empty or its download did not finish; download it again")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_BYTES or header_len > size - 8:
                raise _bad_header_length(path, header_len, size)
            raw = fh.read(header_len)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return _parse_header(path, raw, size)


def _bad_header_length(path: Path, header_len: int, size: int) -> ModelLoadError:
    if header_len > MAX_HEADER_BYTES and header_len > size:
        return ModelLoadError(
            f"{path.name}: not a safetensors file (its first 8 bytes do not give a plausible header length)",
            hint="choose a .safetensors model file; if this one came from a download, download it again")
    if header_len > MAX_HEADER_BYTES:
        return UnsafeFileError(f"{path.name}: header claims {header_len:,} bytes, more than the "
                               f"{MAX_HEADER_BYTES // 2**20} MB any safetensors file may have; refused",
                               hint="the file is damaged or was crafted; do not use it")
    return ModelLoadError(f"{path.name}: header claims {header_len:,} bytes but the file holds only "
                          f"{size - 8:,} after the length field: the file is truncated",
                          hint="the download probably did not finish; download the file again")


def _parse_header(path: Path, raw: bytes, size: int) -> SafetensorsHeader:
    name = path.name
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ModelLoadError(f"{name}: the safetensors header is not valid JSON; the file is damaged or is not "
                             "a safetensors file", hint="download the file again") from None
    except RecursionError:  # JSON nested thousands deep: no real header is, and json recurses per level
        raise UnsafeFileError(f"{name}: the safetensors header is nested too deeply to be a real header; refused",
                              hint="the file is damaged or was crafted; do not use it") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{name}: the safetensors header is not a JSON object; the file is damaged")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise UnsafeFileError(f"{name}: the header's __metadata__ is not a map of strings to strings")
    data_bytes = size - 8 - len(raw)
    entries = [_entry(name, key, value) for key, value in header.items()]
    _check_layout(name, entries, data_bytes)
    return SafetensorsHeader(path=path, header_bytes=len(raw), data_bytes=data_bytes,
                             tensors={e.name: e for e in entries}, metadata=dict(metadata))


def _entry(file_name: str, key: str, value: object) -> TensorEntry:
    where = f"{file_name}: tensor `{key}`"
    if not isinstance(value, dict):
        raise UnsafeFileError(f"{where} has no dtype/shape/offsets record in the header")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise UnsafeFileError(f"{where} has unknown dtype {dtype!r}",
                              hint="the file is damaged or uses a number format this app cannot read")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise UnsafeFileError(f"{where} has an invalid shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise UnsafeFileError(f"{where} has invalid data offsets {offsets!r}")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != expected:
        raise UnsafeFileError(
            f"{where}: the header says shape {tuple(shape)} of {dtype} ({expected:,} bytes) but gives it "
            f"{offsets[1] - offsets[0]:,} bytes of data; the header lies about its sizes",
            hint="the file is damaged or was crafted; do not use it")
    return TensorEntry(name=key, dtype=dtype, shape=tuple(shape), start=offsets[0], end=offsets[1])


def _check_layout(name: str, entries: list[TensorEntry], data_bytes: int) -> None:
    """Tensors must tile the data section exactly, as the safetensors format requires."""
    position = 0
    previous: TensorEntry | None = None
    for e in sorted(entries, key=lambda e: (e.start, e.end)):
        if e.start < position:
            assert previous is not None
            raise UnsafeFileError(f"{name}: tensors `{previous.name}` and `{e.name}` overlap in the file; "
                                  "the header lies about its offsets",
                                  hint="the file is damaged or was crafted; do not use it")
        if e.start > position:
            raise UnsafeFileError(f"{name}: {e.start - position:,} bytes before tensor `{e.name}` belong to no "
                                  "tensor; the header does not describe the file",
                                  hint="the file is damaged or was crafted; do not use it")
        position = e.end
        previous = e
    if position > data_bytes:
        raise ModelLoadError(f"{name}: the header describes {position:,} bytes of tensor data but the file holds "
                             f"only {data_bytes:,}: the file is truncated",
                             hint="the download probably did not finish; download the file again")
    if position < data_bytes:
        raise ModelLoadError(f"{name}: {data_bytes - position:,} bytes at the end of the file belong to no tensor; "
                             "the file is damaged", hint="download the file again")


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, after validating its header."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header = read_safetensors_header(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelLoadError(f"{path.name}: cannot read the tensors ({exc})",
                             hint="the file may be damaged; download it again") from None
    return tensors, header.metadata


# torch.save's legacy (non-zip) format starts with a pickled magic number: PROTO 2, then LONG1 of 10 bytes
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def torch_container(path: Path) -> str | None:
    """`zip` (torch.save since 1.6), `legacy` (the older pickle stream), `pickle` (some other pickle, left to
    the weights-only unpickler to judge) or None when the file is none of these.

    Checked before unpickling so that a damaged or foreign file gets our message, not the unpickler's
    internals: a truncated zip has lost its central directory, a text file renamed `.ckpt` is no pickle."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            return "zip" if any(n.endswith("data.pkl") for n in names) else None
        with open(path, "rb") as fh:
            head = fh.read(len(_LEGACY_TORCH_MAGIC))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if head == _LEGACY_TORCH_MAGIC:
        return "legacy"
    return "pickle" if head[:1] == b"\x80" else None  # PROTO: the first opcode of every pickle since protocol 2


def not_a_checkpoint(path: Path) -> ModelLoadError:
    return ModelLoadError(f"{path.name}: cannot read it: not a valid checkpoint (damaged or not a PyTorch file)",
                          hint="if it came from a download, download it again; a .safetensors version of the "
                               "model is the safer choice")


def load_pickled(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.ckpt`/`.pt`/`.bin`, unpickled only with torch's weights-only unpickler."""
    path = Path(path)
    container = torch_container(path)
    if container is None:
        raise not_a_checkpoint(path)
    try:
        # mmap keeps multi-GB checkpoints out of memory until a tensor is used; only the zip format has it
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=container == "zip")
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(
            f"{path.name}: refused: loading it would need more than plain tensors ({_pickle_reason(exc)}); "
            "a file like this can run code on this computer", hint=_CONVERT_HINT) from None
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile, struct.error):
        # torch's own text here names its internals (PytorchStreamReader, record offsets): ours says what to do
        raise not_a_checkpoint(path) from None
    return _tensors_of(path, obj)


def _pickle_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler objected to, in one short phrase."""
    import re

    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it asks to import `{found.group(1)}`"
    found = re.search(r"Unsupported operand (\d+)", text)
    if found:
        return f"it uses pickle instruction {found.group(1)}, which plain tensors never need"
    return "it holds objects other than tensors"


def _tensors_of(path: Path, obj: object) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint object: unwraps Lightning's `state_dict` and flattens nested dicts."""
    while isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path.name}: holds a {type(obj).__name__}, not a dictionary of weights")
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)

    walk("", obj)
    return out


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor in a weight file, loaded safely; the one loader everything in `studio` uses."""
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

