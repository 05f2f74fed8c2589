"""TensorBoard event files beside `events.jsonl`, written without TensorFlow or the tensorboard package.

`tensorboard --logdir runs` shows our losses, learning rate, validation loss and previews next to other
trainers' runs. An event file is a TFRecord stream (u64 length, u32 masked CRC-32C of it, the bytes, u32
masked CRC-32C of them) of `Event` protocol buffers; the few messages needed are encoded here by hand
rather than pulling in protobuf and grpc. The tests read our files back with TensorBoard's own reader.
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import time
from pathlib import Path

from PIL import Image

from studio.safe_names import safe_file_name


_TABLE = [functools.reduce(lambda c, _: (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1, range(8), n)
          for n in range(256)]


def masked_crc(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _summary_value(tag: str, value: bytes) -> bytes:
    return _field_bytes(1, _field_bytes(1, tag.encode()) + value)


def _event(step: int, *, summary: bytes | None = None, file_version: str | None = None) -> bytes:
    out = _varint(1 << 3 | 1) + struct.pack("<d", time.time()) + _field_varint(2, step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if summary is not None:
        out += _field_bytes(5, summary)
    return out


class EventWriter:
    """Appends scalars and images to `<folder>/events.out.tfevents.<time>.<host>.<pid>`; flushed per write."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        host = safe_file_name(socket.gethostname(), "host")  # a PC's name may hold what a file name cannot
        self.path = folder / f"events.out.tfevents.{int(time.time())}.{host}.{os.getpid()}"
        self._fh = open(self.path, "ab")
        self._record(_event(0, file_version="brain.Event:2"))

    def _record(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._fh.write(header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data)))
        self._fh.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        simple_value = _varint(2 << 3 | 5)
        summary = b"".join(_summary_value(tag, simple_value + struct.pack("<f", float(v)))
                           for tag, v in values.items() if v is not None)
        self._record(_event(step, summary=summary))

    def image(self, step: int, tag: str, path: Path) -> None:
        with Image.open(path) as im:  # a Summary.Image of the PNG
            image = (_field_varint(1, im.height) + _field_varint(2, im.width)
                     + _field_varint(3, len(im.getbands())) + _field_bytes(4, path.read_bytes()))
        self._record(_event(step, summary=_summary_value(tag, _field_bytes(4, image))))

    def close(self) -> None:
        self._fh.close()
