"""A few hundred hostile `.safetensors` files, generated deterministically from a seed.

`cases(seed)` returns `(case_id, file_bytes, expect)` triples. `expect` is `"error"` when every loader must
refuse the file with a StudioError, or `"any"` when the mutation may have left a valid file (then loading it
or refusing it are both fine; anything else — another exception, a signal, unbounded memory — is not).

The base file is a small kohya LoRA (one module: down, up, alpha), so the LoRA reader is exercised too.
"""

from __future__ import annotations

import json
import random
import struct

import torch
from safetensors.torch import save

MODULE = "lora_unet_mid_block_attentions_0_proj_in"
MAX_HEADER_BYTES = 100 * 1024 * 1024


def base_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {f"{MODULE}.lora_down.weight": torch.randn(2, 8, generator=g),
            f"{MODULE}.lora_up.weight": torch.randn(8, 2, generator=g),
            f"{MODULE}.alpha": torch.tensor(2.0)}


def base_file() -> bytes:
    return save(base_tensors(), metadata={"ss_network_module": "networks.lora"})


def split(blob: bytes) -> tuple[int, bytes, bytes]:
    (n,) = struct.unpack("<Q", blob[:8])
    return n, blob[8:8 + n], blob[8 + n:]


def pack(header: bytes, data: bytes, length: int | None = None) -> bytes:
    n = len(header) if length is None else length
    return struct.pack("<Q", n % 2**64) + header + data


def jheader(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _base_header() -> tuple[dict, bytes]:
    _, raw, data = split(base_file())
    return json.loads(raw), data


DOWN = f"{MODULE}.lora_down.weight"  # shape [2, 8] F32 at data offsets [4, 68]


def _with_entry(key: str, **changes) -> bytes:
    """The base file with one tensor entry's fields replaced (`_REMOVE` removes the field)."""
    header, data = _base_header()
    entry = dict(header[key])
    for name, value in changes.items():
        if value is _REMOVE:
            entry.pop(name, None)
        else:
            entry[name] = value
    header[key] = entry
    return pack(jheader(header), data)


_REMOVE = object()


def cases(seed: int = 20261123) -> list[tuple[str, bytes, str]]:
    rng = random.Random(seed)
    good = base_file()
    n, raw, data = split(good)
    header, _ = _base_header()
    out: list[tuple[str, bytes, str]] = []

    def add(name: str, blob: bytes, expect: str = "error") -> None:
        out.append((f"{len(out):04d}-{name}", blob, expect))

    # ---- A. the length field -----------------------------------------------------------------------
    for blob in (b"", b"\x00", b"\x01\x02\x03", b"\x00" * 7, b"\x00" * 8, b"\xff" * 8):
        add("short-file", blob)
    add("empty-but-valid", b"\x02" + b"\x00" * 7 + b"{}", "any")
    for length in (0, 1, 2, 7, n - 1, n + 1, n + len(data) + 1, len(good), 2**31 - 1, 2**31, 2**32, 2**32 + n,
                   2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, MAX_HEADER_BYTES + 1, MAX_HEADER_BYTES,
                   10**15, 10**18):
        add(f"length-{length}", pack(raw, data, length))
    for _ in range(20):
        add("length-random", pack(raw, data, rng.getrandbits(64)))
    for delta in (-5, -2, 2, 5, 17):
        add(f"length-delta{delta}", pack(raw, data, n + delta))

    # ---- B. a header that is not a JSON object ---------------------------------------------------------
    for _ in range(12):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        add("header-random-bytes", pack(junk, data))
    for cut in sorted(rng.sample(range(1, n - 1), 12)):
        add(f"header-truncated-at-{cut}", pack(raw[:cut], data))
    for text in (b"[]", b'"x"', b"42", b"null", b"true", b"{", b"}", b"{}}", b"{\"a\":}", b"NaN", b"\xff\xfe{}",
                 b"\xef\xbb\xbf" + raw, raw.decode().encode("utf-16"), b"\x00" * 16, b"{\x00}",
                 b"{\"a\": NaN}", b"{\"a\": Infinity}", b"\xc3\x28" + raw[2:], b"{'a': 1}"):
        add("header-not-object", pack(text, data))
    add("header-empty-object-with-data", pack(b"{}", data))
    add("header-empty-object", pack(b"{}", b""), "any")
    add("header-trailing-spaces", pack(raw + b"  ", data), "any")  # the format allows space padding
    add("header-trailing-nuls", pack(raw + b"\x00\x00", data))
    depth = 100_000
    add("nested-arrays-100k", pack(b"[" * depth + b"]" * depth, b""))
    add("nested-objects-100k", pack(b'{"a":' * depth + b"1" + b"}" * depth, b""))
    add("nested-in-metadata", pack(jheader({**header})[:-1] + b',"__metadata__x":' + b"[" * depth + b"]" * depth
                                   + b"}", data))
    add("nested-in-entry", pack(jheader(header)[:-1] + b',"deep":{"dtype":"F32","shape":' + b"[" * depth
                                + b"]" * depth + b',"data_offsets":[0,0]}}', data))
    add("nested-200", pack(b"[" * 200 + b"]" * 200, b""))

    # ---- C. dtypes ---------------------------------------------------------------------------------------
    for dtype in ("F4", "f32", "", "F32 ", "I128", "U128", "F128", "STR", "OBJECT", "PICKLE", "F8", "C128", "Q4",
                  "\u0000", "F32\u0000", None, 4, 4.0, True, [], {}, ["F32"], "F" * 10_000):
        add(f"dtype-{str(dtype)[:12]!r}", _with_entry(DOWN, dtype=dtype))

    # ---- D. shapes -----------------------------------------------------------------------------------------
    for shape in ([-2, 8], [2, -8], [-1], [2.0, 8], ["2", 8], [None, 8], [True, 8], [[2], 8], {}, "2,8", None, 16,
                  [2**63, 8], [2**64, 8], [2**32, 2**32], [2**31, 2**31, 4], [1] * 9, [1] * 64, [2, 8, 0],
                  [0, 2**62], [], [2**62, 4], [3, 8], [2, 9]):
        add(f"shape-{str(shape)[:20]}", _with_entry(DOWN, shape=shape))
    for shape in ([16], [4, 4], [2, 8, 1], [8, 2], [1, 16, 1, 1]):  # same byte count: an honest reshape
        add(f"shape-reshaped-{shape}", _with_entry(DOWN, shape=shape), "any")

    # ---- E. data offsets ------------------------------------------------------------------------------------
    s, e = header[DOWN]["data_offsets"]  # [4, 68]
    span = e - s
    offs = [[e, s], [-1, span - 1], [s, -e], [s + 1, e + 1], [s, e + 1], [s, e - 1], [0, span], [e, e + span],
            [s, s], [s], [s, e, e + span], [], None, f"{s},{e}", [float(s), float(e)], [str(s), str(e)], [None, e],
            [True, e], [s, 2**63], [2**63, 2**63 + span], [2**64 - span, 2**64], [s, 2**64], [s, 10**15],
            [10**15, 10**15 + span], [len(data), len(data) + span], [len(data) - span + 1, len(data) + 1],
            {str(s): e}, [[s], [e]], [s, 2**31], [2**31, 2**31 + span]]
    for o in offs:
        add(f"offsets-{str(o)[:24]}", _with_entry(DOWN, data_offsets=o))
    # overlapping / gapped layouts built from scratch
    for first, second in (((0, 64), (32, 96)), ((0, 64), (0, 64)), ((0, 64), (68, 132)), ((4, 68), (68, 132)),
                          ((0, 64), (64, 128)), ((64, 128), (0, 64)), ((0, 128), (64, 128))):
        h = {"a": {"dtype": "F32", "shape": [16], "data_offsets": list(first)},
             "b": {"dtype": "F32", "shape": [16], "data_offsets": list(second)}}
        size = max(first[1], second[1])
        expect = "any" if sorted((first, second)) == [(0, 64), (64, 128)] else "error"
        add(f"layout-{first}-{second}", pack(jheader(h), bytes(size)), expect)

    # the classic lie: a header that claims terabytes of data in a small file
    for dims, dtype, nbytes in (([250_000_000_000_000], "F32", 10**15), ([2**40], "F64", 2**43),
                                ([2**20, 2**20, 2**10], "U8", 2**50), ([2**61], "F32", 2**63)):
        h = {"huge": {"dtype": dtype, "shape": dims, "data_offsets": [0, nbytes]}}
        add(f"claims-{nbytes}-bytes", pack(jheader(h), bytes(64)))

    # ---- F. metadata -------------------------------------------------------------------------------------------
    for meta in ({"a": 1}, {"a": None}, {"a": ["x"]}, {"a": {"b": "c"}}, ["a"], "a", 5, True, {"": ""},
                 {"a": "x" * 1_000_000}, {str(i): "v" for i in range(20_000)}, {"a": "\ud800"}, None, {}):
        h = {**header, "__metadata__": meta}
        expect = "any" if meta in (None, {}, {"": ""}) or (isinstance(meta, dict) and all(
            isinstance(v, str) for v in meta.values()) and "\ud800" not in meta.values()) else "error"
        try:
            blob = pack(jheader(h), data)
        except UnicodeEncodeError:
            blob = pack(json.dumps(h).encode(), data)
        add(f"metadata-{type(meta).__name__}", blob, expect)

    # ---- G. duplicate keys (JSON allows them; a reader must not be fooled about the layout) --------------------
    keys = [k for k in header if k != "__metadata__"]
    body = raw.decode().rstrip()
    first_entry = json.dumps({DOWN: header[DOWN]}, separators=(",", ":"))[1:-1]
    add("duplicate-key-identical", pack((body[:-1] + "," + first_entry + "}").encode(), data), "any")
    moved = json.dumps({DOWN: {**header[DOWN], "data_offsets": [0, 64]}}, separators=(",", ":"))[1:-1]
    add("duplicate-key-overlapping", pack((body[:-1] + "," + moved + "}").encode(), data))
    add("duplicate-metadata", pack((body[:-1] + ',"__metadata__":{"x":"y"}}').encode(), data), "any")
    dtype_twice = body.replace('"dtype":"F32"', '"dtype":"F32","dtype":"F64"', 1)
    add("duplicate-field-dtype", pack(dtype_twice.encode(), data))
    off_twice = body.replace('"data_offsets":', '"data_offsets":[0,1],"data_offsets":', 1)
    add("duplicate-field-offsets", pack(off_twice.encode(), data), "any")

    # ---- H. entry structure ----------------------------------------------------------------------------------
    for value in ([], "F32", 42, None, [{"dtype": "F32"}], True):
        h = dict(header)
        h[DOWN] = value
        add(f"entry-{type(value).__name__}", pack(jheader(h), data))
    for field_name in ("dtype", "shape", "data_offsets"):
        add(f"entry-missing-{field_name}", _with_entry(DOWN, **{field_name: _REMOVE}))
    add("entry-extra-field", _with_entry(DOWN, extra="x"), "any")
    for key in ("", "\u0000", "k" * 1_000_000, "../../etc/passwd", "__metadata__x"):
        h = {k: v for k, v in header.items() if k != DOWN}
        h[key] = header[DOWN]
        add(f"key-{key[:10]!r}", pack(jheader(h), data), "any")

    # ---- I. the data section lies ------------------------------------------------------------------------------
    for cut in (1, 4, 63, len(data) - 1, len(data)):
        add(f"data-truncated-{cut}", pack(raw, data[:-cut]))
    for extra in (1, 8, 4096):
        add(f"data-trailing-{extra}", pack(raw, data + b"\0" * extra))
    add("data-nan-inf", pack(raw, struct.pack("<f", float("nan")) * 16 + struct.pack("<f", float("inf")) * 16
                             + data[128:]), "any")

    # ---- J. random mutations of the valid file --------------------------------------------------------------
    for i in range(80):
        blob = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(8, 8 + n)
            blob[pos] = rng.getrandbits(8)
        add(f"flip-header-{i}", bytes(blob), "any")
    for i in range(25):
        blob = bytearray(good)
        pos = rng.randrange(0, 8)
        blob[pos] = rng.getrandbits(8)
        add(f"flip-length-{i}", bytes(blob), "error" if bytes(blob) != good else "any")
    for i in range(30):
        add(f"truncate-{i}", good[:rng.randrange(0, len(good))])
    for i in range(25):
        pos = rng.randrange(8, 8 + n)
        chunk = bytes(rng.choice(b'{}[]",:0123456789-eE.\\ ') for _ in range(rng.randint(1, 6)))
        add(f"insert-header-{i}", pack(raw[:pos - 8] + chunk + raw[pos - 8:], data), "any")
    for i in range(20):
        pos = rng.randrange(8 + n, len(good))
        blob = bytearray(good)
        blob[pos] ^= 0xFF
        add(f"flip-data-{i}", bytes(blob), "any")  # the header is honest; the weights changed
    return out
