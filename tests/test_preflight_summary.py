"""The pre-flight summary's numbers (issue 18, point 3): steps from images × repeats, epochs, the estimate on
each device class, differences from the preset, and warnings that name what to change."""

from __future__ import annotations

import json

import pytest

from studio.config import ProjectConfig, load_preset, save_project
from studio.machine_defaults import Device
from studio.preflight_summary import (FolderCount, gather, measured_speed, rough_duration, step_seconds,
                                      summarize)
from tests.conftest import make_images

CPU = Device("cpu", "CPU", None, 2)
RTX = Device("cuda", "NVIDIA GeForce RTX 3060", 11.7, 8)


def two_folders(tmp_path):
    """`10_a` with 3 images and `2_b` with 5, inside one dataset folder (kohya layout)."""
    root = tmp_path / "data"
    make_images(root / "10_a", n=3, size=(16, 16))
    make_images(root / "2_b", n=5, size=(16, 16), seed=1)
    return root


def cfg_for(root, **schedule) -> ProjectConfig:
    return ProjectConfig().with_section("dataset", folders=(str(root),)).with_section("schedule", **schedule)


def test_steps_from_two_folders_of_different_repeats(tmp_path):
    root = two_folders(tmp_path)
    batch, epochs = 2, 4
    cfg = cfg_for(root, batch_size=batch, max_steps=(30 + 10) * epochs // batch)
    got = gather(cfg, None)
    assert sorted((f.name, f.images, f.repeats) for f in got.folders) == [("10_a", 3, 10), ("2_b", 5, 2)]
    s = summarize(cfg, CPU, got.folders)
    assert (s.images, s.per_epoch, s.steps_per_epoch, s.max_steps, s.epochs) == (8, 40, 20, 80, 4.0)
    assert s.steps_line() == ("3 × 10 (10_a) + 5 × 2 (2_b) = 40 images an epoch ÷ 2 a step = 20 steps an epoch; "
                              "80 steps = 4 epochs")


def test_accumulation_regularisation_and_hold_out_change_the_epoch():
    folders = [FolderCount("10_a", 3, 10), FolderCount("2_b", 5, 2)]
    cfg = ProjectConfig().with_section("dataset", folders=("x",)).with_section(
        "schedule", batch_size=2, gradient_accumulation=2, max_steps=25)
    s = summarize(cfg, CPU, folders)
    assert (s.images_per_step, s.steps_per_epoch, s.epochs) == (4, 10, 2.5)
    assert s.steps_line().endswith("25 steps = 2.5 epochs; 20 or 30 steps give whole epochs")
    assert summarize(cfg, CPU, folders, regularization=7).per_epoch == 80  # as many class images again
    held = summarize(cfg.with_section("sampling", validation_percent=25.0), CPU, folders)
    assert held.held_out == 2 and held.per_epoch == 30  # 6 of 8 images stay: 40 × 6/8


def test_differences_from_the_preset_after_changing_two_fields():
    preset = load_preset("sd15-character")
    cfg = preset.with_section("network", rank=8).with_section("schedule", max_steps=600)
    cfg = cfg.with_section("dataset", folders=("mine",)).with_section("output", name="alice")  # content: not listed
    s = summarize(cfg, RTX, [FolderCount("a", 10, 1)], reference=preset, reference_name="preset sd15-character")
    assert [(d.section, d.key, d.value, d.reference) for d in s.differences] == [
        ("network", "rank", 8, 32), ("schedule", "max_steps", 600, 2000)]
    assert s.reference_name == "preset sd15-character"


def test_cpu_notice_for_a_cpu_and_not_for_an_nvidia_gpu():
    cfg = ProjectConfig().with_section("dataset", folders=("x",))
    folders = [FolderCount("a", 20, 1)]
    cpu = summarize(cfg, CPU, folders)
    assert cpu.cpu_notice.startswith("This machine has no usable GPU: training will be very slow (about 10 h")
    assert "Lower Steps or Resolution, or train on a machine with an NVIDIA GPU." in cpu.cpu_notice
    assert summarize(cfg, RTX, folders).cpu_notice is None
    mac = summarize(cfg, Device("mps", "Apple GPU", None, 2), folders)
    assert "Mac's GPU is not used" in mac.cpu_notice


def test_estimates_scale_with_resolution_squared_and_images_per_step():
    base = ProjectConfig()
    for device in (CPU, RTX):
        at512 = step_seconds(base, device).step_s
        assert step_seconds(base.with_section("dataset", resolution=256), device).step_s == pytest.approx(at512 / 4)
        assert step_seconds(base.with_section("dataset", resolution=1024), device).step_s == pytest.approx(at512 * 4)
        assert step_seconds(base.with_section("schedule", batch_size=3), device).step_s == pytest.approx(at512 * 3)
    total = step_seconds(base.with_section("schedule", max_steps=10), CPU)
    assert total.total_s == pytest.approx(total.step_s * 10)
    assert step_seconds(base, RTX).step_s < step_seconds(base, CPU).step_s / 20


def test_warnings_name_the_setting_to_change():
    cfg = ProjectConfig().with_section("dataset", folders=("x",))
    warnings = summarize(cfg, CPU, [FolderCount("a", 20, 1)]).warnings
    fields = {(w.section, w.key) for w in warnings}
    assert ("dataset", "resolution") in fields and ("schedule", "max_steps") in fields
    resolution = next(w.text for w in warnings if w.key == "resolution")
    assert resolution.startswith("Resolution 512 on a CPU: about 36 s a step") and "lower Resolution to 256" in resolution
    few = summarize(cfg.with_section("schedule", max_steps=5), RTX, [FolderCount("a", 20, 1)]).warnings
    assert any("raise Max steps to at least 20" in w.text for w in few)
    empty = summarize(ProjectConfig(), RTX, []).warnings
    assert [w.key for w in empty] == ["path", "folders"]
    sdxl = summarize(cfg, RTX, [FolderCount("a", 20, 1)], family="sdxl").warnings
    assert any("raise Resolution to 1024" in w.text for w in sdxl)


def test_trained_parts_say_network_rank_alpha_dora_and_encoders():
    cfg = ProjectConfig().with_section("network", type="locon", rank=8, alpha=4.0, dora=True, train_text_encoder=True)
    unet, te = summarize(cfg, RTX, [], family="sdxl").trained
    assert unet.startswith("UNet: LoCon rank 8, alpha 4") and "DoRA" in unet and "3×3 convolutions" in unet
    assert te.startswith("text encoders (CLIP-L and OpenCLIP-G): LoCon too")
    assert summarize(ProjectConfig(), RTX, []).trained[1] == "text encoder: not trained"


def test_measured_step_time_of_the_last_run_replaces_the_guess(tmp_path):
    project = tmp_path / "project.toml"
    run = tmp_path / "runs" / "20261203-080000-lora"
    run.mkdir(parents=True)
    save_project(ProjectConfig().with_section("dataset", resolution=256), run / "config.toml")
    events = [{"type": "started", "run_dir": str(run), "total_steps": 50, "device": "NVIDIA GeForce RTX 3060"}]
    events += [{"type": "progress", "step": i, "total": 50, "epoch": 0, "loss": 0.1, "smoothed_loss": 0.1,
                "lr": 1e-4, "it_per_s": 99.0 if i <= 3 else 4.0} for i in range(1, 11)]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    measured = measured_speed(tmp_path)
    assert measured is not None and measured.step_s == pytest.approx(0.25) and measured.resolution == 256
    cfg = ProjectConfig().with_section("dataset", resolution=512)
    est = step_seconds(cfg, RTX, measured=measured)
    assert est.measured and est.step_s == pytest.approx(1.0) and "from the last run, 20261203-080000-lora" in est.basis
    assert not step_seconds(cfg, CPU, measured=measured).measured  # another device: the guess
    assert gather(cfg, project).measured == measured


def test_rough_durations():
    assert [rough_duration(s) for s in (40, 12 * 60, 95 * 60, 10 * 3600 - 60, 80 * 3600)] == [
        "40 s", "12 min", "1 h 40 min", "10 h", "3 days"]


def test_an_empty_dataset_says_what_the_run_would_be_not_zero_epochs():
    cfg = ProjectConfig().with_section("schedule", batch_size=2, max_steps=300)
    assert summarize(cfg, CPU, []).steps_line() == "300 steps of 2 image(s) each, once the dataset has images"
