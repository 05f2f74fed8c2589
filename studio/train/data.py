"""Turning a dataset into training examples: VAE latents, captions, buckets, masks (batches: `batches`).

The VAE is frozen, so each image is encoded once before the loop (sd-scripts' `cache_latents`), its mirror
too when flip is on (a latent is not mirror-symmetric). Headers are read first (sizes → buckets), then a
bucket batch at a time, so a large dataset is never held in memory as pixels. A Dataset-panel crop box
makes its region the image (bucket, pixels, mask and SDXL's `original_size`), as if the file were cropped;
a focus point centres the window cut from the scaled image on it, and `crop_top_left` reports its offset.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from studio.config import DatasetConfig
from studio.dataset.images import IMAGE_EXTENSIONS, ImageProblem, open_checked, to_rgb, user_region
from studio.dataset.scan import ImageRecord, scan_folders
from studio.errors import DatasetError
from studio.train.buckets import (bucket_spec, choose_bucket, crop_offset, fit_to_bucket, make_buckets,
                                  mirrored_crop, scaled_size)
from studio.dataset.tags import split_tags
from studio.train.folders import FolderSettings, dataset_defaults, folder_settings
from studio.train.latent_cache import CacheKey, LatentCache

MASK_FOLDER = "masks"
LOAD_THREADS = 4
ENCODE_BATCH = 4  # images per VAE call


@dataclass(frozen=True)
class Example:
    latents: torch.Tensor  # 4 × h/8 × w/8, already multiplied by the VAE scaling factor
    caption: str
    original_size: tuple[int, int]  # (height, width) of the image as read, or of its crop box: SDXL size conditioning
    crop_top_left: tuple[int, int]  # (top, left) of the crop in the scaled image: SDXL crop conditioning
    target_size: tuple[int, int] = (0, 0)  # (height, width) of the bucket in pixels
    flipped: torch.Tensor | None = None  # latents of the mirrored image, when flip is on
    flipped_crop_top_left: tuple[int, int] = (0, 0)
    mask: torch.Tensor | None = None  # 1 × h/8 × w/8 loss weights in [0, 1]
    folder: int = 0  # index into PreparedDataset.folders
    is_reg: bool = False
    path: str = ""


@dataclass(frozen=True)
class PreparedDataset:
    examples: tuple[Example, ...]  # training images, then regularisation images
    repeats: tuple[int, ...]  # per example; 0 for regularisation images (they fill the other half of an epoch)
    skipped: tuple[str, ...]  # messages for images that could not be used
    tag_frequency: dict[str, dict[str, int]]
    dataset_dirs: dict[str, dict[str, int]]
    folders: tuple[FolderSettings, ...] = (FolderSettings(),)
    validation: tuple[Example, ...] = ()
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def reg_indices(self) -> list[int]:
        return [i for i, ex in enumerate(self.examples) if ex.is_reg]

    @property
    def epoch_length(self) -> int:
        """Examples per epoch: the repeated training images, plus as many regularisation images."""
        n = sum(self.repeats)
        return 2 * n if self.reg_indices else n

    @property
    def num_train_images(self) -> int:
        return sum(1 for ex in self.examples if not ex.is_reg)

    @property
    def num_reg_images(self) -> int:
        return len(self.examples) - self.num_train_images

    def bucket_counts(self) -> dict[str, int]:
        counts = Counter(f"{ex.target_size[1]}x{ex.target_size[0]}" for ex in self.examples)
        return dict(sorted(counts.items()))


def collect_images(cfg: DatasetConfig, resolve: Callable[[str], object],
                   project_dir: Path | None = None) -> tuple[list[ImageRecord], list[str]]:
    """The dataset's image records, or a DatasetError that says what is wrong with the folders. With a project
    folder the Dataset panel's choices (`dataset.json`) apply and exact duplicates are trained once."""
    from studio.dataset.training import training_scan

    if not cfg.folders:
        raise DatasetError("no dataset folder is set", hint="add a folder of images ([dataset] folders, or --data)")
    folders = [resolve(f) for f in cfg.folders]
    scan = training_scan(folders, caption_extension=cfg.caption_extension, default_caption=cfg.default_caption,
                         default_repeats=cfg.repeats, project_dir=project_dir)
    missing = [p.message for p in scan.problems if p.kind == "missing"]
    if missing and len(missing) == len(folders):
        raise DatasetError("; ".join(missing), hint="check the dataset folder path")
    if not scan.images:
        from studio.validate import NO_IMAGES_HINT, no_images_message

        raise DatasetError(no_images_message(folders), hint=NO_IMAGES_HINT)
    return list(scan.images), [p.message for p in scan.problems]


def collect_regularization(cfg: DatasetConfig, resolve: Callable[[str], object]) -> list[ImageRecord]:
    """Class images for prior preservation; a folder that is missing or empty is an error, not a no-op."""
    if not cfg.regularization_folders:
        return []
    folders = [resolve(f) for f in cfg.regularization_folders]
    scan = scan_folders(folders, caption_extension=cfg.caption_extension, default_caption=cfg.default_caption)
    missing = [p.message for p in scan.problems if p.kind == "missing"]
    if missing:
        raise DatasetError("regularisation folder: " + "; ".join(missing),
                           hint="check [dataset] regularization_folders")
    if not scan.images:
        raise DatasetError(f"no regularisation images in {', '.join(str(f) for f in folders)}",
                           hint="add class images, or clear [dataset] regularization_folders")
    return list(scan.images)


def _to_tensor(img) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as the image will be read (EXIF rotation applied), from the header alone."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception:
        open_checked(path)  # raises the ImageProblem that says what is wrong
        raise ImageProblem(path, "unreadable image header") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def find_mask(image: Path) -> Path | None:
    folder = image.parent / MASK_FOLDER
    if not folder.is_dir():
        return None
    candidates = (folder / f"{image.stem}{e}" for ext in sorted(IMAGE_EXTENSIONS) for e in (ext, ext.upper()))
    return next((c for c in candidates if c.is_file()), None)


def load_mask(path: Path, image_size_wh: tuple[int, int], bucket: tuple[int, int],
              region: tuple[int, int, int, int] | None = None,
              focus: tuple[float, float] | None = None) -> torch.Tensor:
    """A greyscale mask cropped like its image (stretched to `image_size_wh` first, then cut to the image's
    `region` and `focus`) and averaged down to latent resolution: 1 × h/8 × w/8."""
    mask = ImageOps.exif_transpose(open_checked(path)).convert("L")
    if mask.size != image_size_wh:
        mask = mask.resize(image_size_wh, Image.Resampling.BILINEAR)
    mask, _ = fit_to_bucket(mask, *bucket, focus=focus, region=region)
    arr = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None, None]
    return F.interpolate(arr, size=(bucket[1] // 8, bucket[0] // 8), mode="area")[0]


def _load_crop(path: Path, bucket: tuple[int, int], region: tuple[int, int, int, int] | None = None,
               focus: tuple[float, float] | None = None) -> Image.Image | ImageProblem:
    try:
        crop, _ = fit_to_bucket(to_rgb(open_checked(path)), *bucket, focus=focus, region=region)
        return crop
    except ImageProblem as exc:
        return exc


def _image_seed(seed: int, path: Path) -> int:
    """Seed of one image's latent sampling noise: independent of batch make-up and of the other images."""
    # surrogateescape: a file name that is not UTF-8 (Linux allows any bytes) hashes as its bytes; UTF-8 names as before
    digest = hashlib.sha256(f"{seed}|{path.name}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass
class _Item:
    rec: ImageRecord
    folder: int
    is_reg: bool
    size: tuple[int, int]  # (width, height) of the region trained on: the crop box, or the whole image
    bucket: tuple[int, int]  # (width, height)
    flip: bool
    crop: tuple[int, int]
    flipped_crop: tuple[int, int]
    full_size: tuple[int, int] = (0, 0)  # (width, height) of the whole EXIF-rotated image
    region: tuple[int, int, int, int] | None = None  # the user's crop box in pixels of the whole image
    focus: tuple[float, float] | None = None  # the user's focus point, fractions of the region
    latents: torch.Tensor | None = None  # None: unusable (it could not be read, or the VAE gave NaN)
    flipped: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@torch.no_grad()
def _encode(vae, pixels: torch.Tensor, seeds: Sequence[int], *, device, dtype) -> list[torch.Tensor]:
    dist = vae.encode(pixels.to(device=device, dtype=dtype)).latent_dist
    scaling = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    out = []
    for i, s in enumerate(seeds):
        gen = torch.Generator(device="cpu").manual_seed(s)
        noise = torch.randn(dist.mean.shape[1:], generator=gen, dtype=torch.float32)
        sample = dist.mean[i] + dist.std[i] * noise.to(device=device, dtype=dist.mean.dtype)
        out.append(((sample - shift) * scaling).float().cpu())
    return out


def prepare_dataset(records: list[ImageRecord], cfg: DatasetConfig, vae, *, device: torch.device,
                    dtype: torch.dtype, seed: int, reg_records: Sequence[ImageRecord] = (),
                    validation_records: Sequence[ImageRecord] = (), cache: LatentCache | None = None,
                    vae_hash: str = "") -> PreparedDataset:
    spec = bucket_spec(cfg)
    buckets = make_buckets(spec)
    folder_index: dict[tuple[Path, bool], int] = {}
    settings: list[FolderSettings] = []

    def settings_for(rec: ImageRecord, is_reg: bool) -> int:
        key = (rec.folder, is_reg)
        if key not in folder_index:
            base = dataset_defaults(cfg, rec.repeats, loss_weight=cfg.prior_loss_weight if is_reg else 1.0)
            folder_index[key] = len(settings)
            settings.append(folder_settings(rec.folder, base))
        return folder_index[key]

    skipped: list[str] = []
    groups = (("train", records, False), ("reg", reg_records, True), ("val", validation_records, False))
    items: dict[str, list[_Item]] = {name: [] for name, _, _ in groups}
    for name, recs, is_reg in groups:
        for rec in recs:
            try:
                full = image_size(rec.path)
                region, focus = user_region(full, rec.crop, rec.focus)
                size = (region[2] - region[0], region[3] - region[1]) if region is not None else full
                bucket = choose_bucket(*size, spec, buckets)
            except (ImageProblem, ValueError) as exc:  # a ValueError is a bucket's, without the path
                skipped.append(str(exc) if isinstance(exc, ImageProblem) else f"{rec.path}: {exc}")
                continue
            folder = settings_for(rec, is_reg)
            flip = settings[folder].flip and name != "val"
            scaled = scaled_size(*size, *bucket)
            crop = crop_offset(scaled, *bucket, focus)
            items[name].append(_Item(rec, folder, is_reg, size, bucket, flip, crop,
                                     mirrored_crop(crop, scaled[0], bucket[0]), full, region, focus))
    everything = [it for name, _, _ in groups for it in items[name]]
    if not items["train"] and not skipped:
        raise DatasetError("no training images are left", hint="hold fewer images out for validation")
    by_bucket: dict[tuple[int, int], list[_Item]] = {}
    for it in everything:
        by_bucket.setdefault(it.bucket, []).append(it)
    hits = misses = 0
    pool = ThreadPoolExecutor(max_workers=LOAD_THREADS)  # Pillow decodes and resizes without the GIL
    try:
        for bucket, group in sorted(by_bucket.items()):
            for start in range(0, len(group), ENCODE_BATCH):
                todo: list[tuple[_Item, CacheKey | None]] = []
                for it in group[start:start + ENCODE_BATCH]:
                    key = None
                    if cache is not None:
                        key = CacheKey.for_image(it.rec.path, bucket, flip=it.flip, vae=vae_hash, seed=seed,
                                                 crop=it.rec.crop, focus=it.rec.focus)
                        found = cache.get(key)
                        if found is not None:
                            it.latents, it.flipped = found["latents"], found.get("flipped") if it.flip else None
                            hits += 1
                            continue
                        misses += 1
                    todo.append((it, key))
                pixels, seeds, encoded = [], [], []
                loads = pool.map(lambda t: _load_crop(t[0].rec.path, bucket, t[0].region, t[0].focus), todo)
                for (it, key), loaded in zip(todo, loads):
                    if isinstance(loaded, ImageProblem):
                        skipped.append(str(loaded))
                        continue
                    pixels.append(_to_tensor(loaded))
                    seeds.append(_image_seed(seed, it.rec.path))
                    if it.flip:
                        pixels.append(_to_tensor(loaded.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
                        seeds.append(_image_seed(seed + 1, it.rec.path))
                    encoded.append((it, key))
                if pixels:
                    latents = iter(_encode(vae, torch.stack(pixels), seeds, device=device, dtype=dtype))
                    for it, key in encoded:
                        it.latents = next(latents)
                        it.flipped = next(latents) if it.flip else None
                        if not all(bool(torch.isfinite(t).all()) for t in (it.latents, it.flipped) if t is not None):
                            # one NaN latent would make the loss NaN at the step that draws it
                            skipped.append(f"{it.rec.path}: the VAE gave NaN/Inf values for this image")
                            it.latents = it.flipped = None
                            continue
                        if cache is not None and key is not None:
                            cache.put(key, {"latents": it.latents} if it.flipped is None
                                      else {"latents": it.latents, "flipped": it.flipped})
    finally:
        pool.shutdown()
    for it in everything:
        mask_path = find_mask(it.rec.path) if cfg.masked_loss and it.latents is not None else None
        if mask_path is not None:
            try:
                it.mask = load_mask(mask_path, it.full_size, it.bucket, it.region, it.focus)
            except ImageProblem as exc:
                skipped.append(f"mask {exc} (the image is learnt everywhere)")
    kept = {name: [it for it in items[name] if it.latents is not None] for name in items}
    if not kept["train"]:
        raise DatasetError("none of the images could be read: " + "; ".join(skipped[:5])
                           + (" …" if len(skipped) > 5 else ""),
                           hint="the folder must contain valid .png/.jpg/.webp images")

    def example(it: _Item) -> Example:
        assert it.latents is not None
        return Example(latents=it.latents, caption=it.rec.caption, original_size=(it.size[1], it.size[0]),
                       crop_top_left=it.crop, target_size=(it.bucket[1], it.bucket[0]), flipped=it.flipped,
                       flipped_crop_top_left=it.flipped_crop, mask=it.mask, folder=it.folder, is_reg=it.is_reg,
                       path=str(it.rec.path))

    train, reg = kept["train"], kept["reg"]
    freq: dict[str, dict[str, int]] = {}
    dirs: dict[str, dict[str, int]] = {}
    for it in train:
        name = it.rec.folder.name
        freq.setdefault(name, Counter()).update(split_tags(it.rec.caption))
        dirs.setdefault(name, {"n_repeats": settings[it.folder].repeats, "img_count": 0})["img_count"] += 1
    return PreparedDataset(
        examples=tuple(example(it) for it in train + reg),
        repeats=tuple(settings[it.folder].repeats for it in train) + (0,) * len(reg),
        skipped=tuple(skipped), tag_frequency=freq, dataset_dirs=dirs, folders=tuple(settings),
        validation=tuple(example(it) for it in kept["val"]), cache_hits=hits, cache_misses=misses)
