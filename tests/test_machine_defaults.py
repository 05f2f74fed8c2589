"""Defaults from the device class (issue 18, point 3): the class from the worker's device and a torch-free
probe, the training defaults and their reasons, and the mixer's preview size and steps."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from studio.config import ProjectConfig
from studio.hardware import GIB, GpuInfo, Hardware, parse_nvidia_smi, probe
from studio.machine_defaults import Device, defaults_for, device_from_hardware, device_from_ready


def probed(*gpus: tuple[str, float]) -> Hardware:
    return Hardware(tuple(GpuInfo(i, name, int(gib * GIB), True, (8, 6)) for i, (name, gib) in enumerate(gpus)),
                    None, "Test CPU", 8)


@pytest.mark.parametrize(("gib", "cls"), [(5.8, "cuda-small"), (7.8, "cuda-mid"), (11.7, "cuda-mid"),
                                         (15.6, "cuda-large"), (23.6, "cuda-large"), (39.4, "cuda-huge"),
                                         (79.6, "cuda-huge")])
def test_nvidia_class_follows_the_vram(gib, cls):
    assert device_from_ready("NVIDIA X", probed(("NVIDIA X", gib))).device_class == cls


def test_the_worker_saying_cpu_wins_over_a_gpu_the_probe_lists():
    """A CPU build of PyTorch cannot use the GPU nvidia-smi sees: training runs on the CPU."""
    device = device_from_ready("cpu", probed(("NVIDIA GeForce RTX 4090", 23.6)), system="Linux", machine="x86_64")
    assert device.kind == "cpu" and device.on_cpu and device.cpu_threads == 8


def test_apple_silicon_is_its_own_class_with_the_cpu_defaults():
    device = device_from_ready("cpu", None, system="Darwin", machine="arm64", cpu_threads=10)
    assert device.device_class == "mps" and device.on_cpu
    mps, cpu = defaults_for(device), defaults_for(Device("cpu", "CPU", None, 10))
    assert [(d.key, d.value) for d in mps.training] == [(d.key, d.value) for d in cpu.training]
    assert "not used for training" in mps.training[0].reason


def test_vram_comes_from_the_probed_gpu_of_that_name_and_is_unknown_without_one():
    hw = probed(("NVIDIA RTX A2000", 5.8), ("NVIDIA GeForce RTX 3090", 23.6))
    assert device_from_ready("NVIDIA GeForce RTX 3090", hw).vram_gib == pytest.approx(23.6)
    unknown = device_from_ready("NVIDIA GeForce RTX 3090", None)
    assert unknown.vram_gib is None and unknown.device_class == "cuda-mid"  # the careful middle


def test_device_from_torch_detection():
    assert device_from_hardware(probed(("NVIDIA H100", 79.6))).device_class == "cuda-huge"
    assert device_from_hardware(Hardware((), None, "cpu", 4, apple_gpu=True)).kind == "mps"


def test_cpu_training_defaults_are_small_and_each_has_a_reason():
    d = defaults_for(Device("cpu", "CPU"))
    cfg = d.apply(ProjectConfig())
    assert cfg.dataset.resolution == 256 and cfg.schedule.max_steps == 300 and cfg.schedule.batch_size == 1
    assert cfg.schedule.mixed_precision == "no" and cfg.sampling.steps == 8
    assert all(x.reason.startswith("CPU:") and len(x.reason) > 30 for x in d.training)


def test_gpu_defaults_use_the_memory_savers_only_where_memory_is_short():
    small = defaults_for(device_from_ready("G", probed(("G", 5.8)))).apply(ProjectConfig())
    big = defaults_for(device_from_ready("G", probed(("G", 79.6)))).apply(ProjectConfig())
    assert small.schedule.gradient_checkpointing and small.optimizer.name == "adamw8bit"
    assert small.schedule.batch_size == 1
    assert not big.schedule.gradient_checkpointing and big.optimizer.name == "adamw"
    assert big.schedule.batch_size == 8 and big.dataset.resolution == 512


def test_changes_lists_only_what_apply_changes():
    d = defaults_for(Device("cpu", "CPU"))
    changed = {(x.section, x.key) for x in d.changes(ProjectConfig())}
    # batch 1 and no gradient checkpointing are already ProjectConfig's values
    assert ("dataset", "resolution") in changed and ("schedule", "batch_size") not in changed
    assert ("schedule", "gradient_checkpointing") not in changed
    assert d.changes(d.apply(ProjectConfig())) == ()


def test_preview_defaults_small_on_a_cpu_native_sizes_on_a_gpu():
    cpu = defaults_for(Device("cpu", "CPU")).preview
    assert (cpu.size_for("sd1"), cpu.size_for("sdxl"), cpu.steps_for("sd1")) == (256, 256, 8)
    assert "256 px and 8 steps" in cpu.reason
    gpu = defaults_for(device_from_ready("G", probed(("G", 11.7)))).preview
    assert (gpu.size_for("sd1"), gpu.size_for(None), gpu.size_for("sdxl")) == (512, 512, 1024)
    assert 20 <= gpu.steps_for("sd1") <= 25 and 20 <= gpu.steps_for("sdxl") <= 25


def test_parse_nvidia_smi_rows_and_skip_garbage():
    gpus = parse_nvidia_smi("0, NVIDIA GeForce RTX 3060, 12288, 8.6\n1, Tesla T4, 15360, 7.5\nbroken line\n")
    assert [(g.index, g.name, round(g.vram_gib), g.bf16) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 3060", 12, True), (1, "Tesla T4", 15, False)]


def test_probe_reads_nvidia_smi_without_torch_and_survives_its_failure():
    ok = lambda *a, **k: SimpleNamespace(returncode=0, stdout="0, NVIDIA A100-SXM4-40GB, 40960, 8.0\n")  # noqa: E731
    assert probe(run=ok).best_gpu.name == "NVIDIA A100-SXM4-40GB"
    failing = lambda *a, **k: SimpleNamespace(returncode=9, stdout="")  # noqa: E731
    assert probe(run=failing).gpus == ()

    def hangs(*a, **k):
        raise subprocess.TimeoutExpired("nvidia-smi", 10)

    hw = probe(run=hangs)
    assert hw.gpus == () and "nvidia-smi" in hw.error


def test_the_window_side_never_imports_torch():
    """The window learns the device from the worker and this probe; the summary counts images: no torch."""
    import sys

    code = ("import sys\n"
            "from studio.config import ProjectConfig\n"
            "from studio.hardware import probe\n"
            "from studio.machine_defaults import defaults_for, device_from_ready\n"
            "from studio.preflight_summary import gather, summarize\n"
            "d = defaults_for(device_from_ready('cpu', probe()))\n"
            "g = gather(ProjectConfig(), None)\n"
            "summarize(d.apply(ProjectConfig()), d.device, g.folders)\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
