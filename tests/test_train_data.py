"""Data features of the engine: buckets, captions, flip, per-folder settings, regularisation images, masks."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.config import DatasetConfig
from studio.dataset.scan import scan_folders
from studio.errors import ConfigError
from studio.train.buckets import BucketSpec, bucket_spec, choose_bucket, fit_to_bucket, make_buckets
from studio.train.captions import CaptionPolicy, augment_caption
from studio.train.batches import batch_rng, batches, collate, epoch_chunks
from studio.train.data import prepare_dataset


def _image(path: Path, w: int, h: int, seed: int, caption: str = "photo, thing") -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")).save(path)
    path.with_suffix(".txt").write_text(caption, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def vae(tiny_sd1):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(tiny_sd1, subfolder="vae").eval()


def _prepare(folder: Path, vae, **dataset):
    cfg = DatasetConfig(folders=(str(folder),), **dataset)
    records = list(scan_folders([folder]).images)
    return prepare_dataset(records, cfg, vae, device=torch.device("cpu"), dtype=torch.float32, seed=5)


# --------------------------------------------------------------------------------------------------
# buckets


def test_buckets_have_the_area_step_and_side_limits():
    spec = BucketSpec(resolution=512, min_side=256, max_side=1024, step=64, no_upscale=False)
    buckets = make_buckets(spec)
    assert (512, 512) in buckets and (1024, 256) in buckets and (256, 1024) in buckets
    for w, h in buckets:
        assert w % 64 == 0 and h % 64 == 0
        assert 256 <= w <= 1024 and 256 <= h <= 1024
        assert w * h <= 512 * 512
        assert (h, w) in buckets
    # one side is the longest that fits the other: one more step would exceed the area or the side limit
    tallest = lambda a, b: a * (b + 64) > 512 * 512 or b + 64 > 1024  # noqa: E731
    for w, h in buckets:
        assert tallest(w, h) or tallest(h, w)


def test_images_go_to_the_bucket_of_closest_aspect_ratio():
    spec = bucket_spec(DatasetConfig(resolution=512, bucketing=True))
    assert (spec.min_side, spec.max_side, spec.step) == (256, 1024, 64)
    buckets = make_buckets(spec)
    assert choose_bucket(1000, 1000, spec, buckets) == (512, 512)
    assert choose_bucket(1920, 1080, spec, buckets) == (640, 384)  # 1.78 → 1.67, the nearest available
    assert choose_bucket(1080, 1920, spec, buckets) == (384, 640)
    assert choose_bucket(3000, 700, spec, buckets) == (1024, 256)  # beyond the widest bucket: the widest


def test_no_upscale_never_enlarges_and_rounds_down_to_the_step():
    spec = bucket_spec(DatasetConfig(resolution=512, bucketing=True, bucket_no_upscale=True))
    rng = random.Random(0)
    for _ in range(500):
        w = rng.randint(64, 2000)
        h = rng.randint(max(64, w // 4), min(2000, w * 4))
        bw, bh = choose_bucket(w, h, spec, [])
        assert bw <= w and bh <= h, (w, h, bw, bh)
        assert bw % 64 == 0 and bh % 64 == 0 and bw * bh <= 512 * 512 and max(bw, bh) <= 1024
    assert choose_bucket(300, 200, spec, []) == (256, 192)  # small: own size, rounded down
    with pytest.raises(ValueError, match="does not fill a bucket"):
        choose_bucket(300, 40, spec, [])
    img = Image.new("RGB", (300, 200))
    crop, (top, left) = fit_to_bucket(img, 256, 192)
    assert crop.size == (256, 192) and (top, left) == (0, 16)  # scale 0.96 → 288×192, centred


def test_bad_bucket_settings_are_refused():
    with pytest.raises(ConfigError, match="multiple of 8"):
        bucket_spec(DatasetConfig(bucketing=True, bucket_step=60))
    with pytest.raises(ConfigError, match="do not include the resolution"):
        bucket_spec(DatasetConfig(bucketing=True, resolution=512, bucket_max_side=384))


def test_every_batch_holds_one_bucket_and_the_crops_are_the_real_ones(vae, tmp_path):
    sizes = [(200, 100), (220, 110), (100, 200), (120, 240), (150, 150), (160, 170), (300, 150)]
    for i, (w, h) in enumerate(sizes):
        _image(tmp_path / "data" / f"{i}.png", w, h, seed=i)
    ds = _prepare(tmp_path / "data", vae, resolution=128, bucketing=True, bucket_step=64)
    by_path = {Path(e.path).name: e for e in ds.examples}
    assert make_buckets(bucket_spec(DatasetConfig(resolution=128, bucketing=True))) == [
        (64, 192), (64, 256), (128, 128), (192, 64), (256, 64)]
    assert by_path["0.png"].target_size == (64, 192)  # (height, width): 2:1 is nearer 3:1 than 1:1 (log scale)
    assert by_path["2.png"].target_size == (192, 64)
    assert by_path["4.png"].target_size == (128, 128)
    for name, ex in by_path.items():
        w, h = sizes[int(name[0])]
        assert ex.original_size == (h, w)  # SDXL's original_size: the image as read
        th, tw = ex.target_size
        assert ex.latents.shape == (4, th // 8, tw // 8)
        scale = max(tw / w, th / h)
        assert ex.crop_top_left == ((max(th, round(h * scale)) - th) // 2, (max(tw, round(w * scale)) - tw) // 2)
    assert len(ds.bucket_counts()) == 3
    for epoch in range(3):
        chunks = epoch_chunks(ds, 2, seed=1, epoch=epoch)
        assert sorted(i for c in chunks for i in c) == list(range(len(sizes)))
        for chunk in chunks:
            assert len({ds.examples[i].target_size for i in chunk}) == 1
            batch = collate(ds, chunk, batch_rng(1, epoch, 0))
            assert batch.latents.shape[0] == len(chunk)
    # resuming mid-epoch continues with the same batches
    stream = batches(ds, 2, seed=1)
    first = [next(stream) for _ in range(6)]
    epoch, index, _ = first[2]
    resumed = batches(ds, 2, seed=1, start_epoch=epoch, start_index=index)
    assert [next(resumed) for _ in range(3)] == first[3:]


def test_without_bucketing_every_image_is_a_centre_cropped_square(vae, tmp_path):
    _image(tmp_path / "d" / "a.png", 200, 100, seed=1)
    _image(tmp_path / "d" / "b.png", 64, 128, seed=2)
    ds = _prepare(tmp_path / "d", vae, resolution=64)
    assert {e.target_size for e in ds.examples} == {(64, 64)}
    assert {Path(e.path).name: e.crop_top_left for e in ds.examples} == {"a.png": (0, 32), "b.png": (32, 0)}


# --------------------------------------------------------------------------------------------------
# captions


def test_caption_shuffle_keeps_the_first_tokens_and_every_tag():
    policy = CaptionPolicy(shuffle=True, keep_tokens=2)
    caption = "sks, woman, red hair, smiling, outdoors, hat"
    seen = set()
    for seed in range(200):
        out = augment_caption(caption, policy, random.Random(seed)).split(", ")
        assert out[:2] == ["sks", "woman"]
        assert sorted(out[2:]) == sorted(["red hair", "smiling", "outdoors", "hat"])
        seen.add(tuple(out[2:]))
    assert len(seen) > 15  # 24 orders exist; shuffling reaches most of them
    assert augment_caption(caption, policy, random.Random(3)) == augment_caption(caption, policy, random.Random(3))


def test_tag_and_caption_dropout_happen_at_their_rates():
    tags = [f"t{i}" for i in range(20)]
    caption = ", ".join(["keep"] + tags)
    kept = 0
    for seed in range(200):
        out = augment_caption(caption, CaptionPolicy(keep_tokens=1, tag_dropout=0.3), random.Random(seed))
        parts = out.split(", ")
        assert parts[0] == "keep" and parts[1:] == [t for t in tags if t in parts]  # order kept without shuffle
        kept += len(parts) - 1
    assert abs(kept / (200 * 20) - 0.7) < 0.03
    empty = sum(augment_caption(caption, CaptionPolicy(caption_dropout=0.25), random.Random(s)) == ""
                for s in range(2000))
    assert abs(empty / 2000 - 0.25) < 0.03
    assert augment_caption("a,  b ,c", CaptionPolicy(), random.Random(0)) == "a,  b ,c"  # nothing asked: unchanged


# --------------------------------------------------------------------------------------------------
# flip, per-folder settings, regularisation images, masks


def test_flip_caches_a_real_encoding_of_the_mirror_and_uses_it_half_the_time(vae, tmp_path):
    _image(tmp_path / "f" / "a.png", 96, 64, seed=3)
    ds = _prepare(tmp_path / "f", vae, resolution=64, flip=True)
    ex = ds.examples[0]
    assert ex.flipped is not None and ex.flipped.shape == ex.latents.shape
    # the mirror is encoded, not the latent mirrored (a VAE latent is not mirror-symmetric)
    assert not torch.allclose(ex.flipped, torch.flip(ex.latents, dims=[-1]), atol=1e-3)
    from studio.train.data import _encode, _image_seed

    img = Image.open(tmp_path / "f" / "a.png").convert("RGB")
    mirror, _ = fit_to_bucket(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 64, 64)
    arr = torch.from_numpy(np.asarray(mirror, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    (expected,) = _encode(vae, arr, [_image_seed(5 + 1, tmp_path / "f" / "a.png")], device=torch.device("cpu"),
                          dtype=torch.float32)
    assert torch.allclose(ex.flipped, expected, atol=1e-5)
    assert ex.crop_top_left == (0, 16) and ex.flipped_crop_top_left == (0, 16)
    flips = [collate(ds, [0], batch_rng(0, 0, i)).flipped[0] for i in range(400)]
    assert 0.4 < sum(flips) / 400 < 0.6
    batch = next(collate(ds, [0], batch_rng(0, 0, i)) for i in range(400) if flips[i])
    assert torch.equal(batch.latents[0], ex.flipped)
    plain = _prepare(tmp_path / "f", vae, resolution=64)
    assert plain.examples[0].flipped is None
    assert torch.allclose(plain.examples[0].latents, ex.latents, atol=1e-5)  # batched alone: float noise only


def test_folder_toml_overrides_the_dataset_settings_for_its_folder(vae, tmp_path):
    for i in range(2):
        _image(tmp_path / "root" / "5_faces" / f"f{i}.png", 64, 64, seed=i, caption="sks, face, smile")
        _image(tmp_path / "root" / "2_text" / f"t{i}.png", 64, 64, seed=10 + i, caption="sign, letters")
    (tmp_path / "root" / "2_text" / "folder.toml").write_text("repeats = 3\nflip = false\nloss_weight = 0.5\n")
    ds = _prepare(tmp_path / "root", vae, resolution=64, flip=True, shuffle_captions=True, keep_tokens=1)
    by_folder = {Path(e.path).parent.name: ds.folders[e.folder] for e in ds.examples}
    assert by_folder["5_faces"].repeats == 5 and by_folder["5_faces"].flip and by_folder["5_faces"].keep_tokens == 1
    assert by_folder["2_text"].repeats == 3 and not by_folder["2_text"].flip
    assert by_folder["2_text"].loss_weight == 0.5 and by_folder["2_text"].shuffle_captions
    assert ds.epoch_length == 2 * 5 + 2 * 3
    assert ds.dataset_dirs == {"5_faces": {"n_repeats": 5, "img_count": 2}, "2_text": {"n_repeats": 3, "img_count": 2}}
    text = [i for i, e in enumerate(ds.examples) if "2_text" in e.path]
    assert all(ds.examples[i].flipped is None for i in text)
    batch = collate(ds, text, batch_rng(0, 0, 0))
    assert batch.weights.tolist() == [0.5, 0.5]

    (tmp_path / "root" / "2_text" / "folder.toml").write_text("flipp = false\n")
    with pytest.raises(ConfigError, match=r"folder.toml: unknown key `flipp` .*did you mean `flip`"):
        _prepare(tmp_path / "root", vae, resolution=64)


def test_regularisation_images_fill_half_of_each_epoch_at_the_prior_weight(vae, tmp_path):
    from studio.train.data import collect_regularization

    for i in range(3):
        _image(tmp_path / "train" / f"{i}.png", 64, 64, seed=i, caption="sks dog")
    for i in range(2):
        _image(tmp_path / "reg" / f"{i}.png", 64, 64, seed=20 + i, caption="dog")
    cfg = DatasetConfig(folders=(str(tmp_path / "train"),), regularization_folders=(str(tmp_path / "reg"),),
                        resolution=64, repeats=2, prior_loss_weight=0.7)
    reg = collect_regularization(cfg, Path)
    ds = prepare_dataset(list(scan_folders([tmp_path / "train"], default_repeats=2).images), cfg, vae,
                         device=torch.device("cpu"), dtype=torch.float32, seed=0, reg_records=reg)
    assert ds.num_train_images == 3 and ds.num_reg_images == 2 and ds.epoch_length == 12
    for epoch in range(4):
        order = [i for c in epoch_chunks(ds, 4, seed=0, epoch=epoch) for i in c]
        counts = Counter("reg" if ds.examples[i].is_reg else "train" for i in order)
        assert counts == {"train": 6, "reg": 6}
        assert Counter(i for i in order if not ds.examples[i].is_reg) == {0: 2, 1: 2, 2: 2}
    reg_index = ds.reg_indices[0]
    assert collate(ds, [0, reg_index]).weights.tolist() == pytest.approx([1.0, 0.7])
    from studio.errors import DatasetError

    with pytest.raises(DatasetError, match="regularisation folder: .*none: folder not found"):
        collect_regularization(DatasetConfig(regularization_folders=(str(tmp_path / "none"),)), Path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no regularisation images"):
        collect_regularization(DatasetConfig(regularization_folders=(str(tmp_path / "empty"),)), Path)


def test_masks_are_cropped_like_their_image_and_flipped_with_it(vae, tmp_path):
    _image(tmp_path / "m" / "a.png", 128, 64, seed=1)
    _image(tmp_path / "m" / "b.png", 64, 64, seed=2)
    mask = np.zeros((64, 128), dtype="uint8")
    mask[:, 32:64] = 255  # after the centre crop to 64×64 (left 32), the mask's left half is white
    (tmp_path / "m" / "masks").mkdir()
    Image.fromarray(mask).save(tmp_path / "m" / "masks" / "a.png")
    ds = _prepare(tmp_path / "m", vae, resolution=64, masked_loss=True, flip=True)
    by_name = {Path(e.path).name: e for e in ds.examples}
    m = by_name["a.png"].mask
    assert m.shape == (1, 8, 8)
    assert torch.equal(m[0, :, :4], torch.ones(8, 4)) and torch.equal(m[0, :, 4:], torch.zeros(8, 4))
    assert by_name["b.png"].mask is None
    idx = [next(i for i, e in enumerate(ds.examples) if e.path.endswith(name)) for name in ("a.png", "b.png")]
    for i in range(50):
        batch = collate(ds, idx, batch_rng(0, 0, i))
        expected = torch.flip(m, dims=[-1]) if batch.flipped[0] else m
        assert torch.equal(batch.masks[0], expected) and torch.equal(batch.masks[1], torch.ones(1, 8, 8))
