"""Defaults that fit the machine: training settings for a new project and the mixer's preview size and steps.

A new user's first Start must not be ten unannounced hours of 1000 steps at 512 px on a CPU (issue 18): a CPU
gets small images and few steps, a small GPU the memory savers, a big one batch size and speed. Each default
carries the reason shown beside it, and only a new project gets them. The device comes from the worker's
`ready` message plus `studio.hardware.probe()` for the VRAM; Apple GPUs train on the CPU, so get its defaults.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Literal

from studio.config import ProjectConfig
from studio.hardware import Hardware

DeviceClass = Literal["cpu", "mps", "cuda-small", "cuda-mid", "cuda-large", "cuda-huge"]

# VRAM class edges in GiB, a little under the advertised sizes (an "8 GB" card reports 7.6-8.0 GiB, a "40 GB"
# A100 39.4): <8 GB, 8-12 GB, 16-24 GB (and 32), 40 GB and more.
SMALL_BELOW_GIB = 7.0
MID_BELOW_GIB = 14.5
LARGE_BELOW_GIB = 36.0
UNKNOWN_VRAM_CLASS: DeviceClass = "cuda-mid"  # a GPU whose memory nobody reported: the careful middle


@dataclass(frozen=True)
class Device:
    """The device a run trains on, as the window learns it."""

    kind: Literal["cpu", "mps", "cuda"]
    name: str
    vram_gib: float | None = None
    cpu_threads: int = 2

    @property
    def device_class(self) -> DeviceClass:
        if self.kind != "cuda":
            return self.kind
        if self.vram_gib is None:
            return UNKNOWN_VRAM_CLASS
        edges = (SMALL_BELOW_GIB, "cuda-small"), (MID_BELOW_GIB, "cuda-mid"), (LARGE_BELOW_GIB, "cuda-large")
        return next((cls for edge, cls in edges if self.vram_gib < edge), "cuda-huge")

    @property
    def on_cpu(self) -> bool:
        """Training runs on the CPU (an Apple GPU is not used by the engine)."""
        return self.kind != "cuda"

    def describe(self) -> str:
        """"NVIDIA GeForce RTX 3060 (11.8 GB)", "the CPU (8 threads)" — for sentences about the estimate."""
        if self.kind == "cuda":
            return f"{self.name} ({self.vram_gib:.1f} GB)" if self.vram_gib is not None else self.name
        if self.kind == "mps":
            return f"the CPU of this Mac ({self.cpu_threads} threads; its GPU is not used for training)"
        return f"the CPU ({self.cpu_threads} threads)"


def device_from_ready(device: str, probe: Hardware | None = None, *, system: str | None = None,
                      machine: str | None = None, cpu_threads: int | None = None) -> Device:
    """The worker's `ready.device` ("cpu" or the CUDA device's name) with the torch-free probe's VRAM; "cpu"
    wins over a GPU the probe lists, which PyTorch then cannot use (a CPU build, a broken driver)."""
    threads = cpu_threads or (probe.cpu_count if probe else None) or 2
    if device.strip().lower() in ("", "cpu"):
        system = system or platform.system()
        machine = machine or platform.machine()
        apple = (probe.apple_gpu if probe else False) or (system == "Darwin" and machine == "arm64")
        return Device("mps" if apple else "cpu", "Apple GPU" if apple else "CPU", None, threads)
    gpus = probe.gpus if probe else ()
    match = next((g for g in gpus if g.name == device), None) or (gpus[0] if gpus else None)
    return Device("cuda", device, match.vram_gib if match else None, threads)


@dataclass(frozen=True)
class Default:
    """One training default and why it fits this device."""

    section: str
    key: str
    value: Any
    reason: str


@dataclass(frozen=True)
class PreviewDefaults:
    """The mixer's preview: its size by base family, its denoising steps, and why."""

    sd_size: int
    sdxl_size: int
    steps: int
    sdxl_steps: int
    reason: str

    def size_for(self, family: str | None) -> int:
        return self.sdxl_size if family == "sdxl" else self.sd_size

    def steps_for(self, family: str | None) -> int:
        return self.sdxl_steps if family == "sdxl" else self.steps


@dataclass(frozen=True)
class MachineDefaults:
    device: Device
    training: tuple[Default, ...]
    preview: PreviewDefaults

    def apply(self, cfg: ProjectConfig) -> ProjectConfig:
        """`cfg` with every training default set (for a new project only: the caller decides that)."""
        for d in self.training:
            cfg = cfg.with_section(d.section, **{d.key: d.value})
        return cfg

    def changes(self, cfg: ProjectConfig) -> tuple[Default, ...]:
        """The defaults that `apply` would change in `cfg`: what to tell the user was set."""
        return tuple(d for d in self.training if getattr(getattr(cfg, d.section), d.key) != d.value)


def _cpu_training(where: str) -> tuple[Default, ...]:
    return tuple(Default(section, key, value, f"{where}: {why}") for section, key, value, why in (
        ("dataset", "resolution", 256, "256 px, a quarter of the work of 512 px per step; raise it when a "
                                       "GPU is available."),
        ("schedule", "max_steps", 300, "300 steps take about an hour for SD 1.5 at 256 px; 1000 at 512 px "
                                       "would take about ten."),
        ("schedule", "batch_size", 1, "one image per step keeps each step as short as possible."),
        ("schedule", "mixed_precision", "no", "the CPU trains in fp32 (mixed precision is for GPUs)."),
        ("schedule", "gradient_checkpointing", False, "memory is plentiful, and recomputing activations "
                                                      "would cost 20-30% more time."),
        ("dataset", "latent_cache", "disk", "images are VAE-encoded once and kept on disk, so the next run "
                                            "skips the slow encoding."),
        ("sampling", "steps", 8, "8 denoising steps so a preview takes seconds, not minutes."),
        ("sampling", "every_n_steps", 100, "previews every 100 steps (a few during the run)."),
    ))


def _gpu_training(cls: DeviceClass) -> tuple[Default, ...]:
    vram, batch = {"cuda-small": ("under 8 GB of VRAM", 1), "cuda-mid": ("8-12 GB of VRAM", 2),
                   "cuda-large": ("16-24 GB of VRAM", 4), "cuda-huge": ("40 GB of VRAM or more", 8)}[cls]
    small, huge = cls == "cuda-small", cls == "cuda-huge"
    checkpointing = cls in ("cuda-small", "cuda-mid")
    return tuple(Default(section, key, value, f"{vram}: {why}") for section, key, value, why in (
        ("dataset", "resolution", 512, "512 px, the native size of SD 1.5 (choose an SDXL preset for "
                                       "1024 px)."),
        ("schedule", "max_steps", 1500, "1500 steps, enough for a character or a style from 20-40 images."),
        ("schedule", "batch_size", batch, f"{batch} image{'s' if batch > 1 else ''} per step "
                                          f"{'fits' if small else 'fit'} in memory at 512 px."),
        ("schedule", "mixed_precision", "auto", "bf16 where the GPU has it, else fp16: half the memory of "
                                                "fp32, and faster."),
        ("schedule", "gradient_checkpointing", checkpointing,
         "recompute activations to save memory (20-30% slower, but it fits)." if checkpointing
         else "enough memory to keep activations, so steps stay fast."),
        ("dataset", "latent_cache", "disk", "latents cached on disk, so the VAE runs once per image and not "
                                            "in the next run."),
        ("optimizer", "name", "adamw8bit" if small else "adamw",
         "8-bit AdamW state saves about a gigabyte (it falls back to AdamW if bitsandbytes cannot "
         "load)." if small else "plain AdamW (memory is not short)."),
        ("sampling", "steps", 25 if huge else 20, f"{25 if huge else 20} denoising steps per preview, a "
                                                  "clean image in seconds."),
        ("sampling", "every_n_steps", 250, "previews every 250 steps, six in a run."),
    ))


def defaults_for(device: Device) -> MachineDefaults:
    cls = device.device_class
    if device.on_cpu:
        where = "Apple GPU (not used for training: the CPU trains)" if cls == "mps" else "CPU"
        return MachineDefaults(device, _cpu_training(where), PreviewDefaults(
            256, 256, 8, 8, f"{where}: 256 px and 8 steps so a preview takes seconds, not minutes."))
    return MachineDefaults(device, _gpu_training(cls), PreviewDefaults(
        512, 1024, 20, 25, "GPU: SD 1.5 previews at 512 px and SDXL at 1024 px, their native sizes, with 20-25 "
                           "steps."))
