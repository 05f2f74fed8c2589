"""Hardware detection and the preset it recommends, with torch.cuda faked so any GPU can be simulated."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from studio import hardware
from studio.config import preset_names
from studio.hardware import GIB, GpuInfo, Hardware, detect, recommend, versions


def fake_cuda(monkeypatch, devices: list[tuple[str, float, tuple[int, int]]], *, cuda="12.8") -> None:
    """Make torch report `devices` as (name, GiB, compute capability); device 0 is current."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(devices))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(devices))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(
        name=devices[i][0], total_memory=int(devices[i][1] * GIB), major=devices[i][2][0], minor=devices[i][2][1]))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts here: ignored
    monkeypatch.setattr(torch.version, "cuda", cuda)


def gpu(gib: float, bf16: bool = True) -> Hardware:
    return Hardware((GpuInfo(0, "Test GPU", int(gib * GIB), bf16, (8, 6) if bf16 else (7, 5)),), "12.8", "cpu", 8)


def test_cpu_only_machine(monkeypatch):
    fake_cuda(monkeypatch, [], cuda=None)
    hw = detect()
    assert not hw.gpus and hw.best_gpu is None and hw.error is None
    assert hw.cpu_count >= 1 and hw.cpu_name
    assert "CPU only" in hw.summary()
    rec = recommend(hw)
    assert rec.preset == "demo"
    assert "CPU" in rec.reason


def test_one_gpu_name_vram_and_bf16(monkeypatch):
    fake_cuda(monkeypatch, [("NVIDIA GeForce RTX 3060", 11.76, (8, 6))])
    hw = detect()
    assert hw.gpus
    g = hw.best_gpu
    assert g.name == "NVIDIA GeForce RTX 3060" and g.bf16 and g.capability == (8, 6)
    assert round(g.vram_gib, 2) == 11.76
    assert hw.cuda_version == "12.8"
    assert "RTX 3060" in hw.summary() and "11.8 GB" in hw.summary() and "bf16" in hw.summary()
    assert recommend(hw).preset == "sdxl-12gb"


def test_turing_card_has_no_bf16(monkeypatch):
    fake_cuda(monkeypatch, [("Quadro RTX 6000", 23.6, (7, 5))])
    hw = detect()
    assert hw.best_gpu.bf16 is False
    assert "no bf16" in hw.summary()
    rec = recommend(hw)  # enough VRAM for full SDXL, but that preset asks for bf16
    assert rec.preset == "sdxl-12gb" and "bf16" in rec.reason


def test_several_gpus_best_is_the_biggest(monkeypatch):
    fake_cuda(monkeypatch, [("small", 8.0, (8, 6)), ("big", 24.0, (8, 9))])
    hw = detect()
    assert len(hw.gpus) == 2
    assert hw.best_gpu.name == "big"
    assert hw.gpus[1].bf16  # judged by compute capability (8.9)
    assert "(+1 more)" in hw.summary()
    assert recommend(hw).preset == "sdxl-character"


def test_broken_driver_falls_back_to_cpu_with_a_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def boom():
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(torch.cuda, "device_count", boom)
    hw = detect()
    assert not hw.gpus
    assert "insufficient" in hw.error
    assert recommend(hw).preset == "demo"


@pytest.mark.parametrize("gib,bf16,preset", [
    (2.0, True, "demo"),
    (4.0, True, "sd15-character"),
    (6.0, True, "sd15-character"),
    (8.0, True, "sd15-character"),
    (11.7, True, "sdxl-12gb"),
    (16.0, True, "sdxl-12gb"),
    (23.6, True, "sdxl-character"),
    (80.0, True, "sdxl-character"),
    (23.6, False, "sdxl-12gb"),
])
def test_preset_for_vram(gib, bf16, preset):
    rec = recommend(gpu(gib, bf16))
    assert rec.preset == preset
    assert rec.reason


def test_every_recommended_preset_exists():
    names = set(preset_names())
    for gib in (0, 2, 4, 6, 8, 12, 16, 24, 48):
        hw = gpu(gib) if gib else Hardware((), None, "cpu", 2)
        assert recommend(hw).preset in names


def test_versions_for_the_about_box(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    v = versions()
    for key in ("LoRA Studio", "Python", "torch", "diffusers", "transformers", "peft", "CUDA"):
        assert v[key]
    assert v["torch"].startswith(torch.__version__.split("+")[0])
    assert v["CUDA"].startswith("none")


def test_versions_with_cuda_build_but_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.versions()["CUDA"] == "12.8 (no usable GPU found)"
