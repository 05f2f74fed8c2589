"""Hostile image files for the training image loader, generated deterministically.

`cases(folder)` returns `(case_id, file name, bytes | None, expect)`; `None` means the case made the path
itself (a folder named like an image). `expect` is "error" (must be an ImageProblem), "ok" (must load) or
"any" (either, but nothing else: no other exception, no crash, bounded memory).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, bit_depth: int = 1, colour: int = 0, rows: int | None = None) -> bytes:
    """A PNG whose IHDR says width×height; the IDAT holds `rows` rows of zeros (all of them by default),
    compressed, so a 180-megapixel image is a few hundred kB on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes((width * channels * bit_depth + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height if rows is None else rows)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(rng: np.random.Generator, w: int = 48, h: int = 40) -> Image.Image:
    return Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8"))


def cases(folder: Path, seed: int = 4) -> list[tuple[str, str, bytes | None, str]]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    out: list[tuple[str, str, bytes | None, str]] = []

    def add(name: str, filename: str, blob: bytes | None, expect: str) -> None:
        out.append((f"{len(out):03d}-{name}", filename, blob, expect))

    # ---- decompression bombs: refused before the pixels are decoded -----------------------------------
    add("png-bomb-180Mpx-1bit", "bomb1.png", png_bomb(13_500, 13_500), "error")
    add("png-bomb-header-only-10Gpx", "bomb2.png", png_bomb(100_000, 100_000, rows=0), "error")
    add("png-bomb-rgba-2^31", "bomb3.png", png_bomb(46_341, 46_341, 8, 6, rows=0), "error")
    add("png-bomb-max-dims", "bomb4.png", png_bomb(2**31 - 1, 2**31 - 1, rows=0), "error")
    gif = bytearray(_encode(_photo(nrng, 8, 8).convert("P"), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen 65535×65535
    add("gif-bomb-screen", "bomb.gif", bytes(gif), "any")
    bmp = bytearray(_encode(_photo(nrng, 8, 8), "BMP"))
    bmp[18:26] = struct.pack("<ii", 60_000, 60_000)
    add("bmp-bomb-dims", "bomb.bmp", bytes(bmp), "error")
    jpg = bytearray(_encode(_photo(nrng, 16, 16), "JPEG"))
    sof = jpg.find(b"\xff\xc0")
    jpg[sof + 5:sof + 9] = struct.pack(">HH", 65_000, 65_000)
    add("jpeg-bomb-sof", "bomb.jpg", bytes(jpg), "error")
    tif = _encode(_photo(nrng, 8, 8), "TIFF")
    add("tiff-bomb-dims", "bomb.tif", tif.replace(struct.pack("<HHII", 256, 3, 1, 8), struct.pack("<HHII", 256, 4, 1,
                                                                                                     200_000)), "any")
    # extreme aspect ratios: few pixels, but scaling them to cover 64×64 would need hundreds of MB
    add("aspect-50000x1", "wide.png", png_bomb(50_000, 1, 8, 2), "any")
    add("aspect-1x50000", "tall.png", png_bomb(1, 50_000, 8, 2), "any")
    add("aspect-20000x2", "wide2.png", png_bomb(20_000, 2, 8, 0), "any")

    # ---- wrong extensions ---------------------------------------------------------------------------------
    photo = _photo(nrng)
    encoded = {fmt: _encode(photo, fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")}
    for fmt, blob in encoded.items():
        for ext in (".png", ".jpg", ".webp", ".bmp"):
            if ext[1:].upper().replace("JPG", "JPEG") != fmt:
                add(f"{fmt.lower()}-named{ext}", f"wrong-{fmt.lower()}{ext}", blob, "ok")
    for name, blob in (("text", b"a photo of a cat, red\n"), ("html", b"<!doctype html><html>403</html>"),
                       ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
                       ("pickle", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94."),
                       ("safetensors", struct.pack("<Q", 2) + b"{}"), ("zip", b"PK\x03\x04" + bytes(40)),
                       ("pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), ("elf", b"\x7fELF\x02\x01\x01" + bytes(60)),
                       ("nul", bytes(1024)), ("one-byte", b"\x89"), ("empty", b"")):
        for ext in (".png", ".jpg", ".webp"):
            add(f"{name}-as{ext}", f"{name}{ext}", blob, "error")
    add("folder-named-png", "folder.png", None, "error")

    # ---- truncated and corrupted files of every format ---------------------------------------------------
    for fmt, blob in encoded.items():
        ext = {"JPEG": ".jpg", "TIFF": ".tif"}.get(fmt, "." + fmt.lower())
        for cut in sorted({1, 8, len(blob) // 4, len(blob) // 2, len(blob) - 10}):
            add(f"{fmt.lower()}-truncated-{cut}", f"cut{ext}", blob[:cut], "any")
        for i in range(6):
            bad = bytearray(blob)
            for _ in range(rng.randint(1, 12)):
                bad[rng.randrange(len(bad))] = rng.getrandbits(8)
            add(f"{fmt.lower()}-corrupt-{i}", f"bad{ext}", bytes(bad), "any")

    # ---- unusual but legal images: these must load ---------------------------------------------------------
    grey16 = Image.fromarray((nrng.random((20, 30)) * 65535).astype("uint16"))
    add("png-16bit-grey", "g16.png", _encode(grey16, "PNG"), "ok")
    add("jpeg-cmyk", "cmyk.jpg", _encode(photo.convert("CMYK"), "JPEG"), "ok")
    add("png-palette-transparent", "p.png", _encode(photo.convert("P"), "PNG", transparency=0), "ok")
    add("png-la", "la.png", _encode(photo.convert("LA"), "PNG"), "ok")
    add("png-1bit", "1.png", _encode(photo.convert("1"), "PNG"), "ok")
    add("tiff-float", "f.tif", _encode(Image.fromarray(nrng.random((20, 30)).astype("float32")), "TIFF"), "any")
    add("tiff-int32", "i.tif", _encode(Image.fromarray((nrng.random((20, 30)) * 1e6).astype("int32")), "TIFF"),
        "any")
    add("png-1x1", "tiny.png", _encode(_photo(nrng, 1, 1), "PNG"), "ok")
    frames = [_photo(nrng, 16, 16).convert("P") for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    add("gif-animated", "anim.gif", buf.getvalue(), "ok")
    for orientation in (0, 1, 3, 6, 8, 9, 255, 65535):
        exif = Image.Exif()
        exif[0x0112] = orientation
        add(f"jpeg-exif-orientation-{orientation}", f"o{orientation}.jpg", _encode(photo, "JPEG", exif=exif.tobytes()),
            "ok")
    base = _encode(photo, "JPEG", exif=Image.Exif().tobytes())
    for i in range(8):  # garbage inside the EXIF block
        app1 = base.find(b"Exif\x00\x00")
        bad = bytearray(base)
        for _ in range(6):
            bad[app1 + 6 + rng.randrange(40)] = rng.getrandbits(8)
        add(f"jpeg-exif-garbage-{i}", f"exif{i}.jpg", bytes(bad), "any")
    return out


def materialise(folder: Path, filename: str, blob: bytes | None) -> Path:
    path = folder / filename
    if blob is None:
        path.mkdir(exist_ok=True)
    else:
        path.write_bytes(blob)
    return path
