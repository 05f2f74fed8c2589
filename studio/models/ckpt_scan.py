"""A `.ckpt`/`.pt` file's tensor names, shapes and dtypes without unpickling it: torch-free, nothing executed.

Why: the window's process lists base models (the model picker) and must never import torch, and a pickle is
never unpickled outside torch's weights-only unpickler. `pickletools.genops` lists a pickle's opcodes without
running any, and the small stack machine below rebuilds name → (dtype, shape, storage) from torch.save's
`_rebuild_tensor_v2` calls. Only the globals the weights-only unpickler allows for tensors and plain
containers are accepted, any other refused in the loader's own words (`safe_load.load_pickled`), so the
picker never lists a file the loader would refuse. Both torch.save formats are read: zip and legacy stream.
"""

from __future__ import annotations

import io
import math
import pickletools
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from studio.errors import ModelLoadError, UnsafeFileError
from studio.models.safetensors_header import FLOAT_CODES, float_values

CONVERT_HINT = ("convert it to .safetensors with a tool you trust (or download the .safetensors version "
                "of the model), then choose that file")
# torch.save's legacy (non-zip) format starts with a pickled magic number: PROTO 2, then LONG1 of 10 bytes
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
#: torch's storage classes → (safetensors dtype name, bytes per element)
_STORAGES = {
    "HalfStorage": ("F16", 2), "BFloat16Storage": ("BF16", 2), "FloatStorage": ("F32", 4),
    "DoubleStorage": ("F64", 8), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4), "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1), "BoolStorage": ("BOOL", 1),
}
_TENSOR_CALLS = {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor"}
_PASS_THROUGH = {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
#: other globals the weights-only unpickler allows in a state dict; they carry nothing we read
_HARMLESS = {"collections.OrderedDict", "torch._tensor._rebuild_from_type_v2", "torch.Size", "torch.device",
             "_codecs.encode", "torch.serialization._get_layout", "builtins.set", "builtins.frozenset",
             "torch.float16", "torch.float32", "torch.bfloat16", "torch.float64", "torch.Tensor",
             "torch.nn.parameter.Parameter"}


@dataclass(frozen=True)
class _Global:
    name: str


@dataclass(frozen=True)
class _Storage:
    dtype: str
    item_size: int
    key: str


@dataclass(frozen=True)
class CkptTensor:
    """One tensor as the pickle describes it: its storage, where in it the tensor starts, its shape."""

    dtype: str
    shape: tuple[int, ...]
    storage: str
    offset: int  # in elements
    item_size: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.item_size


class _Opaque:
    """Anything else the pickle builds (an object we never construct)."""


@dataclass
class CkptScan:
    path: Path
    container: str  # zip | legacy
    tensors: dict[str, CkptTensor]
    _storage_at: dict[str, int] | None = None  # legacy: byte offset of each storage's data

    def values(self, key: str) -> list[float] | None:
        """The elements of one floating-point tensor (the v-prediction probe reads one LayerNorm bias)."""
        t = self.tensors.get(key)
        if t is None or t.dtype not in FLOAT_CODES or t.nbytes > 1 << 20:
            return None
        try:
            raw = self._storage_bytes(t.storage, t.offset * t.item_size, t.nbytes)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, struct.error):
            return None
        return float_values(t.dtype, raw) if len(raw) == t.nbytes else None

    def _storage_bytes(self, key: str, start: int, size: int) -> bytes:
        if self.container == "zip":
            with zipfile.ZipFile(self.path) as archive:
                member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                with archive.open(member[: -len("data.pkl")] + "data/" + key) as fh:
                    fh.seek(start)
                    return fh.read(size)
        assert self._storage_at is not None  # set by scan_ckpt
        with open(self.path, "rb") as fh:
            fh.seek(self._storage_at[key] + start)
            return fh.read(size)


def torch_container(path: Path) -> str | None:
    """`zip`, `legacy` (torch.save's two formats), `pickle` (another pickle, for the weights-only unpickler to
    judge) or None: checked before unpickling so that a damaged or foreign file gets our message, not the
    unpickler's internals."""
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


def refused_import(path: Path, reason: str) -> UnsafeFileError:
    return UnsafeFileError(f"{path.name}: refused: loading it would need more than plain tensors ({reason}); "
                           "a file like this can run code on this computer", hint=CONVERT_HINT)


def scan_ckpt(path: str | Path) -> CkptScan:
    path = Path(path)
    container = torch_container(path)
    if container not in ("zip", "legacy"):
        if container == "pickle":  # not torch.save's: refuse what imports code, else it holds no tensors we know
            with open(path, "rb") as fh:
                _run(path, fh)
        raise not_a_checkpoint(path)
    try:
        if container == "zip":
            with zipfile.ZipFile(path) as archive:
                member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                obj = _run(path, io.BytesIO(archive.read(member)))
                root = member.removesuffix("data.pkl") + "data/"
                sizes = {i.filename.removeprefix(root): i.file_size for i in archive.infolist()}
        else:
            with open(path, "rb") as fh:
                for _ in range(3):  # magic number, protocol version, system info
                    _run(path, fh)
                obj = _run(path, fh)
        scan = CkptScan(path=path, container=container, tensors=flat_tensors(path, obj, CkptTensor))
        if container == "legacy":
            scan._storage_at, sizes = _legacy_storage_offsets(path, scan.tensors)
        # every tensor inside its storage, every storage inside the file: a truncated download fails here, at
        # the listing, rather than half-way through loading
        if any(t.offset * t.item_size + t.nbytes > sizes[t.storage] for t in scan.tensors.values()):
            raise ValueError("a storage is shorter than its tensors")
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, struct.error, IndexError, TypeError):
        raise not_a_checkpoint(path) from None
    return scan


def _run(path: Path, fh: IO[bytes]) -> Any:
    """Evaluate one pickle symbolically: containers are built, tensors become CkptTensor, nothing is called."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    for op, arg, _ in pickletools.genops(fh):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            return stack.pop()
        if name == "MARK":
            marks.append(len(stack))
        elif name in ("EMPTY_DICT", "DICT"):
            items = _pop_mark(stack, marks) if name == "DICT" else []
            stack.append(dict(zip(items[::2], items[1::2])))
        elif name in ("EMPTY_LIST", "LIST"):
            stack.append(_pop_mark(stack, marks) if name == "LIST" else [])
        elif name in ("EMPTY_TUPLE", "TUPLE"):
            stack.append(tuple(_pop_mark(stack, marks)) if name == "TUPLE" else ())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            stack[-n:] = [tuple(stack[-n:])]
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[int(arg)])
        elif name.startswith("EXT"):  # the copyreg extension registry: an import by number
            raise refused_import(path, f"it uses pickle instruction {name}, which plain tensors never need")
        elif name == "INST":
            _global(path, str(arg).replace(" ", "."))
            raise ValueError("protocol-0 instance")
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            module, attr = arg.split(" ", 1) if name == "GLOBAL" else (stack.pop(-2), stack.pop())
            stack.append(_global(path, f"{module}.{attr}"))
        elif name in ("BINPERSID", "PERSID"):
            stack.append(_storage(stack.pop() if name == "BINPERSID" else arg))
        elif name == "REDUCE":
            args = stack.pop()
            stack[-1] = _call(stack[-1], args)
        elif name in ("BUILD", "POP"):
            stack.pop()
        elif name == "NEWOBJ":
            stack.pop()
            stack[-1] = _Opaque()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name == "POP_MARK":
            _pop_mark(stack, marks)
        elif name in ("SETITEM", "SETITEMS"):
            items = [stack.pop(-2), stack.pop()] if name == "SETITEM" else _pop_mark(stack, marks)
            if isinstance(stack[-1], dict):
                stack[-1].update(zip(items[::2], items[1::2]))
        elif name in ("APPEND", "APPENDS"):
            items = [stack.pop()] if name == "APPEND" else _pop_mark(stack, marks)
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif op.arg is not None and op.stack_after and not op.stack_before:  # a literal: int, float, str, bytes
            stack.append(arg)
        else:
            raise ValueError(f"pickle instruction {name}")
    raise EOFError("the pickle has no end")


def _pop_mark(stack: list[Any], marks: list[int]) -> list[Any]:
    at = marks.pop()
    items = stack[at:]
    del stack[at:]
    return items


def _global(path: Path, name: str) -> _Global:
    short = name.removeprefix("torch.")
    if name in _TENSOR_CALLS or name in _PASS_THROUGH or name in _HARMLESS or short in _STORAGES:
        return _Global(name)
    raise refused_import(path, f"it asks to import `{name}`")


def _storage(pid: Any) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Global)):
        raise ValueError("unknown persistent id")
    dtype, size = _STORAGES[pid[1].name.removeprefix("torch.")]
    return _Storage(dtype=dtype, item_size=size, key=str(pid[2]))


def _call(func: Any, args: Any) -> Any:
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        return _Opaque()
    if func.name in _TENSOR_CALLS and args and isinstance(args[0], _Storage):
        storage, offset, shape = args[0], args[1], args[2]
        return CkptTensor(dtype=storage.dtype, shape=tuple(int(d) for d in shape), storage=storage.key,
                          offset=int(offset), item_size=storage.item_size)
    if func.name in _PASS_THROUGH and args:
        return args[0]
    if func.name == "collections.OrderedDict":
        return dict(args[0]) if args and isinstance(args[0], list) else {}
    return _Opaque()


def flat_tensors(path: Path, obj: Any, leaf: type) -> dict[str, Any]:
    """The `leaf`s (CkptTensor here, torch tensors in `safe_load`) of a checkpoint object: unwraps Lightning's
    `state_dict` and flattens nested dicts, so that the picker and the loader see the same keys."""
    while isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path.name}: holds a {type(obj).__name__}, not a dictionary of weights")
    return dict(_walk("", obj, 0, leaf))


def _walk(prefix: str, value: Any, depth: int, leaf: type) -> Iterator[tuple[str, Any]]:
    if isinstance(value, leaf):
        yield prefix, value
    elif isinstance(value, Mapping) and depth < 32:
        for k, v in value.items():
            yield from _walk(f"{prefix}.{k}" if prefix else str(k), v, depth + 1, leaf)


def _legacy_storage_offsets(path: Path, tensors: Mapping[str, CkptTensor]) -> tuple[dict[str, int], dict[str, int]]:
    """(where each storage's bytes start, how many bytes of it the file holds) in a legacy file: after the
    keys list, each storage is an element count and then its data."""
    item_size = {t.storage: t.item_size for t in tensors.values()}
    size = path.stat().st_size
    starts: dict[str, int] = {}
    held: dict[str, int] = {}
    with open(path, "rb") as fh:
        for _ in range(4):
            _run(path, fh)
        keys = _run(path, fh)
        for key in keys:
            (count,) = struct.unpack("<q", fh.read(8))
            start, nbytes = fh.tell(), count * item_size.get(str(key), 1)
            starts[str(key)], held[str(key)] = start, max(0, min(nbytes, size - start))
            fh.seek(nbytes, io.SEEK_CUR)
    return starts, held
