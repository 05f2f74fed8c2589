"""The on-disk latent cache: `<project>/.cache/latents/<key>.safetensors`, one file per image.

VAE encoding is the slowest part of starting a run, and gives the same result for the same inputs. The key
hashes all of them (`CacheKey`), so nothing is invalidated by hand. Entries are written atomically; a bad
one (odd, unreadable, NaN/Inf) counts as missing, so it never fails later runs, and a read-only cache
folder only costs the encoding (`problem` says why, once).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from studio.errors import StudioError
from studio.file_sample import content_sample
from studio.fileio import atomic_path

CACHE_DIR = Path(".cache") / "latents"
FORMAT = "v2"  # v2: the key holds a sample of the image's bytes
#: a latent of a 2048² image is a few megabytes; an entry beyond this is not one of ours
MAX_ENTRY_BYTES = 256 * 2**20


def vae_fingerprint(vae) -> str:
    """A hash of the VAE's weights (and its scaling), so a different or retrained VAE never reuses latents."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((float(vae.config.scaling_factor), getattr(vae.config, "shift_factor", None))).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    path: str  # absolute image path
    mtime_ns: int
    size: int
    bucket: tuple[int, int]  # (width, height) in pixels
    flip: bool
    vae: str
    seed: int
    crop: tuple[float, float, float, float] | None = None  # the user's crop box, fractions of the image
    focus: tuple[float, float] | None = None  # the user's focus point, fractions of the image
    sample: str = ""  # studio.file_sample.content_sample of the image

    @classmethod
    def for_image(cls, path: Path, bucket: tuple[int, int], *, flip: bool, vae: str, seed: int,
                  crop: tuple[float, float, float, float] | None = None,
                  focus: tuple[float, float] | None = None) -> "CacheKey":
        st = path.stat()
        return cls(str(path.resolve()), st.st_mtime_ns, st.st_size, bucket, flip, vae, seed,
                   _floats(crop), _floats(focus), content_sample(path, st))

    def digest(self) -> str:
        parts: list[object] = [FORMAT, self.path, self.mtime_ns, self.size, self.sample, self.bucket, self.flip,
                               self.vae, self.seed]
        # appended only when set, so an image without a crop box or focus point keeps the key it had before
        # they existed (its cached latent stays valid)
        parts += [f"{name}={value}" for name, value in (("crop", self.crop), ("focus", self.focus))
                  if value is not None]
        return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:40]


def _floats(values: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """Plain floats, so a box read back as ints from dataset.json (`[0, 0, 1, 1]`) keys like `(0.0, …)`."""
    return None if values is None else tuple(float(v) for v in values)


class LatentCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problem: str | None = None  # why entries could not be written (then none are tried again)

    def file(self, key: CacheKey) -> Path:
        return self.folder / f"{key.digest()}.safetensors"

    def get(self, key: CacheKey) -> dict[str, torch.Tensor] | None:
        path = self.file(key)
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
                return None
            found = load_file(str(path))
        except Exception:  # a missing or damaged entry is simply encoded again
            return None
        if ("latents" not in found or (key.flip and "flipped" not in found)
                or not all(t.is_floating_point() and bool(torch.isfinite(t).all()) for t in found.values())):
            return None
        return found

    def put(self, key: CacheKey, tensors: dict[str, torch.Tensor]) -> None:
        """Write one entry; a non-finite latent is never cached, and a failed write only sets `problem`."""
        if self.problem is not None or not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.file(key), durable=False) as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                          metadata={"image": key.path, "bucket": f"{key.bucket[0]}x{key.bucket[1]}"})
        except OSError as exc:
            self.problem = (f"the latent cache {self.folder} cannot be written ({exc.strerror}); latents are "
                            "encoded again on the next run")
        except StudioError as exc:
            self.problem = f"the latent cache cannot be written ({exc}); latents are encoded again on the next run"
