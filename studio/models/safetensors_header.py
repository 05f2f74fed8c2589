"""The one reader of safetensors headers: every key, dtype, shape and offset, and the metadata, validated
against the file's real size — torch-free, so the window's process can list models and LoRAs with it.

Why a hand parse and not `safetensors.safe_open`: the header is the part of a downloaded file that can lie,
and a lie must be refused before anything allocates for it, in words that say what is wrong and what to do.
The library refuses the same files, but its errors name no sizes and lump overlaps, gaps and truncation
together ("invalid offset for tensor `b`", "incomplete metadata, file not fully covered").
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import ModelLoadError, UnsafeFileError
from studio.models.base_files import MAX_HEADER_BYTES

# bytes per element for every dtype safetensors can hold that torch can load
DTYPE_SIZES: dict[str, int] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "C64": 8,
}
#: struct codes of the float dtypes `float_values` decodes (a BF16 is the high half of a float32)
FLOAT_CODES = {"F16": "e", "BF16": "f", "F32": "f", "F64": "d"}
_CRAFTED = "the file is damaged or was crafted; do not use it"


def float_values(dtype: str, raw: bytes) -> list[float]:
    """The elements of a little-endian tensor of one of `FLOAT_CODES`, from its bytes, without numpy or torch
    (the v-prediction probe reads one small tensor this way)."""
    if dtype == "BF16":
        raw = b"".join(b"\0\0" + raw[i:i + 2] for i in range(0, len(raw), 2))
    code = FLOAT_CODES[dtype]
    return list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))


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


def read_safetensors_header(path: str | Path) -> SafetensorsHeader:
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
                               hint=_CRAFTED)
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
                              hint=_CRAFTED) from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{name}: the safetensors header is not a JSON object; the file is damaged")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
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
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(d) is int and d >= 0 for d in shape):
        raise UnsafeFileError(f"{where} has an invalid shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
        raise UnsafeFileError(f"{where} has invalid data offsets {offsets!r}")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != expected:
        raise UnsafeFileError(
            f"{where}: the header says shape {tuple(shape)} of {dtype} ({expected:,} bytes) but gives it "
            f"{offsets[1] - offsets[0]:,} bytes of data; the header lies about its sizes", hint=_CRAFTED)
    return TensorEntry(name=key, dtype=dtype, shape=tuple(shape), start=offsets[0], end=offsets[1])


def _check_layout(name: str, entries: list[TensorEntry], data_bytes: int) -> None:
    """Tensors must tile the data section exactly, as the safetensors format requires."""
    position = 0
    previous: TensorEntry | None = None
    for e in sorted(entries, key=lambda e: (e.start, e.end)):
        if e.start < position:
            assert previous is not None
            raise UnsafeFileError(f"{name}: tensors `{previous.name}` and `{e.name}` overlap in the file; "
                                  "the header lies about its offsets", hint=_CRAFTED)
        if e.start > position:
            raise UnsafeFileError(f"{name}: {e.start - position:,} bytes before tensor `{e.name}` belong to no "
                                  "tensor; the header does not describe the file", hint=_CRAFTED)
        position, previous = e.end, e
    if position > data_bytes:
        raise ModelLoadError(f"{name}: the header describes {position:,} bytes of tensor data but the file holds "
                             f"only {data_bytes:,}: the file is truncated",
                             hint="the download probably did not finish; download the file again")
    if position < data_bytes:
        raise ModelLoadError(f"{name}: {data_bytes - position:,} bytes at the end of the file belong to no tensor; "
                             "the file is damaged", hint="download the file again")
