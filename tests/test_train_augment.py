"""Engine runs with the data features on: bucketing, flip, caption changes, regularisation images, masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from studio.events import Checkpoint, Failed, Finished, Progress
from studio.train.engine import run_training
from tests.conftest import tiny_config, train_until

SIZES = [(192, 96), (200, 100), (96, 192), (100, 190), (128, 128), (140, 130)]


def _dataset(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    data, reg = root / "data", root / "reg"
    for folder in (data, reg, data / "masks"):
        folder.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate(SIZES):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"sks, thing {i}, red, round, small", encoding="utf-8")
    mask = np.zeros((96, 192), dtype="uint8")
    mask[:, :96] = 255
    Image.fromarray(mask).save(data / "masks" / "0.png")
    for i in range(2):
        Image.fromarray((rng.random((128, 128, 3)) * 255).astype("uint8")).save(reg / f"r{i}.png")
        (reg / f"r{i}.txt").write_text("thing", encoding="utf-8")
    return data, reg


def _losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Progress)}


@pytest.mark.slow
def test_run_with_every_data_feature_resumes_exactly(tiny_sd1, tmp_path):
    data, reg = _dataset(tmp_path)
    sections = dict(
        dataset={"resolution": 128, "bucketing": True, "flip": True, "shuffle_captions": True, "keep_tokens": 1,
                 "tag_dropout": 0.2, "caption_dropout": 0.1, "regularization_folders": (str(reg),),
                 "prior_loss_weight": 0.5, "masked_loss": True},
        schedule={"max_steps": 5, "batch_size": 2},
        network={"rank": 4, "alpha": 4.0})
    straight = list(run_training(tiny_config(tiny_sd1, data, tmp_path / "a", **sections)))
    assert isinstance(straight[-1], Finished), straight[-1]
    cfg = tiny_config(tiny_sd1, data, tmp_path / "b", output={"save_every_n_steps": 2,
                                                               "directory": str(tmp_path / "b")}, **sections)
    first = train_until(cfg, 3)
    checkpoints = [Path(e.path) for e in first if isinstance(e, Checkpoint)]
    assert checkpoints[0].name == "checkpoint-0000002"
    resumed = list(run_training(cfg, resume_from=checkpoints[0]))
    assert isinstance(resumed[-1], Finished), resumed[-1]
    expected, got = _losses(straight), _losses(resumed)
    assert sorted(got) == [3, 4, 5]
    for step in got:
        assert got[step] == expected[step], (step, got[step], expected[step])
    assert len(set(expected.values())) == 5

    with safe_open(straight[-1].outputs[-1], "pt") as fh:
        meta = fh.metadata()
    assert meta["ss_num_reg_images"] == "2" and meta["ss_prior_loss_weight"] == "0.5"
    assert meta["ss_enable_bucket"] == "True" and meta["ss_flip_aug"] == "True"
    assert (meta["ss_min_bucket_reso"], meta["ss_max_bucket_reso"], meta["ss_bucket_reso_steps"]) == ("64", "256", "64")
    assert meta["ss_shuffle_caption"] == "True" and meta["ss_keep_tokens"] == "1"
    assert json.loads(meta["ss_bucket_info"])["buckets"] == {"192x64": 2, "64x192": 2, "128x128": 4}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_sdxl_is_conditioned_on_each_images_real_size_and_crop(tiny_sdxl, tmp_path, monkeypatch):
    from studio.train import engine

    data, _ = _dataset(tmp_path)
    seen = []
    original = engine.sdxl_time_ids

    def recording(sizes, crops, target):
        seen.extend(list(s) + list(c) + list(target) for s, c in zip(sizes, crops))
        return original(sizes, crops, target)

    monkeypatch.setattr(engine, "sdxl_time_ids", recording)
    cfg = tiny_config(tiny_sdxl, data, tmp_path / "out", dataset={"resolution": 128, "bucketing": True, "flip": True},
                      schedule={"max_steps": 6, "batch_size": 2}, network={"rank": 2, "alpha": 2.0})
    events = list(run_training(cfg))
    assert not isinstance(events[-1], Failed), events[-1]
    # (orig h, orig w, crop top, crop left, target h, target w): from the images' real sizes and their crops
    allowed = set()
    for w, h in SIZES:
        for th, tw in ((64, 192), (192, 64), (128, 128)):
            scale = max(tw / w, th / h)
            sw, sh = max(tw, round(w * scale)), max(th, round(h * scale))
            if abs(np.log(tw / th) - np.log(w / h)) < 0.5:
                top, left = (sh - th) // 2, (sw - tw) // 2
                allowed.add((h, w, top, left, th, tw))
                allowed.add((h, w, top, sw - left - tw, th, tw))  # mirrored
    rows = {tuple(int(v) for v in row) for row in seen}
    assert rows <= allowed, rows - allowed
    assert {(r[4], r[5]) for r in rows} == {(64, 192), (192, 64), (128, 128)}
    assert {(r[0], r[1]) for r in rows} == {(h, w) for w, h in SIZES}
    assert any(r[3] != 0 for r in rows)  # real crops, not the (0, 0) of a square resize


def test_training_on_regularisation_images_needs_the_folder(tiny_sd1, image_folder, tmp_path):
    cfg = tiny_config(tiny_sd1, image_folder, tmp_path, dataset={"regularization_folders": (str(tmp_path / "no"),)})
    events = list(run_training(cfg))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "regularisation folder" in events[0].error and "folder not found" in events[0].error


@pytest.mark.parametrize("text, message", [("repeats = 0\n", "repeats is 0"), ("shuffle = true\n", "unknown key")])
def test_bad_folder_toml_fails_the_run_with_its_path(tiny_sd1, tmp_path, text, message):
    from tests.conftest import make_images

    data = make_images(tmp_path / "d", n=2)
    (data / "folder.toml").write_text(text)
    events = list(run_training(tiny_config(tiny_sd1, data, tmp_path / "o")))
    assert isinstance(events[-1], Failed) and message in events[-1].error and "folder.toml" in events[-1].error
