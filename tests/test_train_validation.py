"""Validation split and loss, the upward-trend note, sample grids across saves, and TensorBoard event files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.config import SamplingConfig
from studio.dataset.scan import scan_folders
from studio.errors import DatasetError
from studio.events import Finished, Log, Progress, Sample, Started, Validation
from studio.train.engine import run_training
from studio.train.validation import ValidationTrend, fixed_timesteps, split_validation
from tests.conftest import make_images, tiny_config


def test_validation_split_by_percent_or_explicit_images(tmp_path):
    data = make_images(tmp_path / "d", n=10)
    records = list(scan_folders([data]).images)
    train, val = split_validation(records, SamplingConfig(validation_percent=20), Path, seed=1)
    assert len(val) == 2 and len(train) == 8
    assert {r.path for r in train}.isdisjoint({r.path for r in val})
    again, _ = split_validation(records, SamplingConfig(validation_percent=20), Path, seed=1)
    assert again == train
    other, _ = split_validation(records, SamplingConfig(validation_percent=20), Path, seed=2)
    assert other != train
    _, one = split_validation(records, SamplingConfig(validation_percent=1), Path, seed=1)
    assert len(one) == 1  # at least one image
    chosen = SamplingConfig(validation_images=(str(data / "img003.png"), str(make_images(tmp_path / "v", n=2))))
    train, val = split_validation(records, chosen, Path, seed=0, caption_extension=".txt")
    assert len(train) == 9 and data / "img003.png" not in {r.path for r in train}
    assert len(val) == 3 and val[0].caption == "photo, thing 3, red"
    with pytest.raises(DatasetError, match="too few"):
        split_validation(records[:1], SamplingConfig(validation_percent=50), Path, seed=0)
    with pytest.raises(DatasetError, match="not found"):
        split_validation(records, SamplingConfig(validation_images=(str(tmp_path / "nope.png"),)), Path, seed=0)


def test_trend_notes_a_rise_once_and_rearms_at_a_new_low():
    trend = ValidationTrend(patience=2)
    notes = [trend.add(step, loss) for step, loss in
             [(10, 1.0), (20, 0.8), (30, 0.85), (40, 0.9), (50, 0.95), (60, 0.7), (70, 0.75), (80, 0.8)]]
    assert [i for i, n in enumerate(notes) if n] == [3, 7]
    assert "step 20" in notes[3] and "0.90000 at step 40" in notes[3]
    assert "lowest 0.70000 at step 60" in notes[7]
    assert fixed_timesteps(1000, 4) == [125, 375, 625, 875]


def _validations(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Validation)}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_validation_loss_is_fixed_noise_and_charted_every_n_steps(tiny_sd1, tmp_path):
    data = make_images(tmp_path / "d", n=6)
    common = dict(sampling={"validation_percent": 34.0, "validation_every_n_steps": 2},
                  schedule={"max_steps": 4, "batch_size": 2})
    frozen = list(run_training(tiny_config(tiny_sd1, data, tmp_path / "a", optimizer={"unet_lr": 0.0}, **common)))
    assert isinstance(frozen[-1], Finished), frozen[-1]
    started = next(e for e in frozen if isinstance(e, Started))
    assert started.num_images == 4  # 2 of 6 held out
    values = _validations(frozen)
    assert sorted(values) == [2, 4]
    assert values[2] == values[4]  # unchanged weights, fixed timesteps and noise: the very same number
    training = list(run_training(tiny_config(tiny_sd1, data, tmp_path / "b", optimizer={"unet_lr": 1e-2}, **common)))
    moving = _validations(training)
    assert sorted(moving) == [2, 4] and moving[2] != moving[4]
    assert moving[2] != values[2]


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_upward_trend_becomes_a_log_warning(tiny_sd1, tmp_path, monkeypatch):
    from studio.train import validation

    monkeypatch.setattr(validation.ValidationTrend, "add",
                        lambda self, step, loss: f"risen at {step}" if step == 2 else None)
    data = make_images(tmp_path / "d", n=4)
    events = list(run_training(tiny_config(tiny_sd1, data, tmp_path, schedule={"max_steps": 3},
                                           sampling={"validation_images": (str(make_images(tmp_path / "v", n=1)),),
                                                     "validation_every_n_steps": 1})))
    assert sorted(_validations(events)) == [1, 2, 3]
    warnings = [e for e in events if isinstance(e, Log) and e.level == "warning"]
    assert [w.text for w in warnings] == ["risen at 2"]
    index = events.index(warnings[0])
    assert isinstance(events[index - 1], Validation) and events[index - 1].step == 2


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_sample_grid_has_a_row_per_save_and_tensorboard_has_everything(tiny_sd1, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = make_images(tmp_path / "d", n=4)
    cfg = tiny_config(tiny_sd1, data, tmp_path, schedule={"max_steps": 4},
                      output={"save_every_n_steps": 2, "directory": str(tmp_path)},
                      sampling={"prompts": ("photo, red", "photo, blue"), "steps": 2, "on_save": True,
                                "validation_images": (str(make_images(tmp_path / "v", n=1)),)})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    samples = [e for e in events if isinstance(e, Sample)]
    assert sorted({(s.step, s.seed) for s in samples}) == [(2, 1234), (2, 1235), (4, 1234), (4, 1235)]
    run_dir = Path(next(e for e in events if isinstance(e, Started)).run_dir)
    grid = Image.open(run_dir / "samples" / "grid.png")
    assert grid.size == (96 + 2 * 64, 2 * 64)
    arr = np.asarray(grid.convert("RGB"))
    for s in samples:
        row, col = [2, 4].index(s.step), int(Path(s.path).stem.rsplit("-", 1)[1])
        tile = arr[row * 64:(row + 1) * 64, 96 + col * 64:96 + (col + 1) * 64]
        assert np.array_equal(tile, np.asarray(Image.open(s.path).convert("RGB")))

    files = list(run_dir.glob("events.out.tfevents.*"))
    assert len(files) == 1 and (run_dir / "events.jsonl").is_file()
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    progress = {e.step: e.loss for e in events if isinstance(e, Progress)}
    train = {s.step: s.value for s in acc.Scalars("loss/train")}
    assert sorted(train) == [1, 2, 3, 4]
    for step, loss in progress.items():
        assert train[step] == pytest.approx(loss, rel=1e-6)
    assert [s.step for s in acc.Scalars("loss/validation")] == [4]
    assert [s.value for s in acc.Scalars("lr/unet")] == pytest.approx([1e-3] * 4)
    images = acc.Images("samples/0")
    assert [i.step for i in images] == [2, 4] and (images[0].width, images[0].height) == (64, 64)
    assert images[0].encoded_image_string == Path(samples[0].path).read_bytes()


def test_tensorboard_can_be_turned_off(tiny_sd1, image_folder, tmp_path):
    events = list(run_training(tiny_config(tiny_sd1, image_folder, tmp_path, schedule={"max_steps": 1},
                                           output={"tensorboard": False, "directory": str(tmp_path)})))
    run_dir = Path(next(e for e in events if isinstance(e, Started)).run_dir)
    assert isinstance(events[-1], Finished) and not list(run_dir.glob("events.out.tfevents.*"))
