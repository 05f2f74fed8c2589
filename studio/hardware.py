"""What this machine can train on, and which preset fits it.

An artist first needs to know whether their computer can do this at all, and which starting point will not
run out of memory: an NVIDIA GPU with so much VRAM (and bf16 or not), or "the CPU — slow" (the engine does
not use Apple GPUs). The same facts, plus library versions, fill the About box and bug reports. `probe()`
never imports torch: the window process must not load it (issue 14), yet needs the VRAM to pick defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from studio import __version__
from studio.codec import from_data, to_data
from studio.errors import StudioError

GIB = 1024**3

# VRAM thresholds in GiB, a little under the advertised size: a "12 GB" card reports 11.7-12.0 GiB and
# the driver keeps some for itself.
SDXL_FULL_GIB = 20.0
SDXL_LOW_GIB = 11.0
SD15_GIB = 5.5
MIN_GPU_GIB = 3.5


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    vram_bytes: int
    bf16: bool
    capability: tuple[int, int]

    @property
    def vram_gib(self) -> float:
        return self.vram_bytes / GIB

    def describe(self) -> str:
        """"NVIDIA GeForce RTX 3060 · 11.8 GB VRAM · bf16" — one line for the welcome screen."""
        bf16 = "bf16" if self.bf16 else "no bf16 (fp16 is used)"
        return f"{self.name} · {_gb(self.vram_gib)} GB VRAM · {bf16}"


@dataclass(frozen=True)
class Hardware:
    """The devices training can use. `gpus` is empty when training runs on the CPU."""

    gpus: tuple[GpuInfo, ...]
    cuda_version: str | None  # the CUDA runtime torch was built with, if any
    cpu_name: str
    cpu_count: int
    apple_gpu: bool = False  # an Apple (MPS) GPU exists but the engine does not use it
    error: str | None = None  # why detection itself failed (a broken driver, torch missing)

    @property
    def best_gpu(self) -> GpuInfo | None:
        """The device with the most VRAM (the worker trains on the current device, normally index 0)."""
        return max(self.gpus, key=lambda g: g.vram_bytes, default=None)

    def summary(self) -> str:
        gpu = self.best_gpu
        if gpu is None:
            return f"CPU only: {self.cpu_name} ({self.cpu_count} threads)"
        more = f" (+{len(self.gpus) - 1} more)" if len(self.gpus) > 1 else ""
        return gpu.describe() + more


@dataclass(frozen=True)
class Recommendation:
    """A preset for this hardware, and why — shown next to the detection so the choice is explained."""

    preset: str
    reason: str


def _cpu_name() -> str:
    # platform.processor() is empty or just "x86_64" on Linux; /proc/cpuinfo has the model name
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_count() -> int:
    return os.cpu_count() or 1


def detect() -> Hardware:
    """Ask torch which CUDA devices exist. Never raises: a broken driver becomes `Hardware.error`."""
    cpu, threads = _cpu_name(), _cpu_count()
    try:
        import torch
    except Exception as exc:  # torch missing or failing to load its libraries
        return Hardware((), None, cpu, threads, error=f"PyTorch could not be loaded: {exc}")
    try:
        apple = bool(torch.backends.mps.is_available())
    except Exception:  # no `mps` backend in this build
        apple = False
    cuda_version = getattr(torch.version, "cuda", None)
    try:
        if not torch.cuda.is_available():
            return Hardware((), cuda_version, cpu, threads, apple_gpu=apple)
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            cap = (int(props.major), int(props.minor))
            gpus.append(GpuInfo(i, str(props.name), int(props.total_memory), _bf16(cap), cap))
        return Hardware(tuple(gpus), cuda_version, cpu, threads, apple_gpu=apple)
    except Exception as exc:  # e.g. a driver too old for this torch: train on the CPU, but say why
        return Hardware((), cuda_version, cpu, threads, apple_gpu=apple,
                        error=f"The NVIDIA driver did not answer ({exc}); training would use the CPU.")


def probe(run=None) -> Hardware:
    """What this machine has, without importing torch: NVIDIA GPUs from `nvidia-smi`, Apple silicon from the
    platform. Never raises; no (working) `nvidia-smi` means no GPU listed. `run` replaces `subprocess.run` in
    tests. Whether CUDA is usable is the worker's to say (`machine_defaults.device_from_ready`)."""
    cpu, threads = _cpu_name(), _cpu_count()
    apple = platform.system() == "Darwin" and platform.machine() == "arm64"
    exe = shutil.which("nvidia-smi") if run is None else "nvidia-smi"
    if exe is None:
        return Hardware((), None, cpu, threads, apple_gpu=apple)
    try:
        out = (run or subprocess.run)(
            [exe, "--query-gpu=index,name,memory.total,compute_cap", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return Hardware((), None, cpu, threads, apple_gpu=apple, error=f"nvidia-smi did not answer ({exc})")
    gpus = parse_nvidia_smi(out.stdout) if out.returncode == 0 else ()
    return Hardware(gpus, None, cpu, threads, apple_gpu=apple)


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """Rows of `index, name, memory.total (MiB), compute_cap` as GpuInfo; malformed rows are skipped."""
    gpus = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):  # also the unpacking of a row without four columns
            index, name, mib, capability = (part.strip() for part in line.split(","))
            major, _, minor = capability.partition(".")
            cap = (int(major), int(minor or 0))
            gpus.append(GpuInfo(int(index), name, int(float(mib) * 2**20), _bf16(cap), cap))
    return tuple(gpus)


def _bf16(capability: tuple[int, int]) -> bool:
    """Native bf16 needs Ampere (8.0) or newer. Not `torch.cuda.is_bf16_supported()`: it also says True for
    GPUs that only emulate bf16 (slowly), and allocates a tensor to find out, a CUDA context in the GUI."""
    return capability >= (8, 0)


def _gb(gib: float) -> str:
    """"11.8", "24" — the same rounding as `GpuInfo.describe`, without a pointless ".0"."""
    text = f"{gib:.1f}"
    return text[:-2] if text.endswith(".0") else text


def recommend(hw: Hardware) -> Recommendation:
    """The preset that fits the best GPU's VRAM; the demo on the CPU, where real models would take days."""
    gpu = hw.best_gpu
    if gpu is None:
        return Recommendation("demo", "Training will run on the CPU: start with the demo project. Real SD models "
                                      "need an NVIDIA GPU to train in a reasonable time.")
    gib = gpu.vram_gib
    if gib >= SDXL_FULL_GIB and gpu.bf16:
        return Recommendation("sdxl-character", f"{_gb(gib)} GB of VRAM is enough for SDXL at 1024 px.")
    ladder = ((SDXL_FULL_GIB, "sdxl-12gb", "fits SDXL, but this GPU has no bf16, so the memory-saving SDXL "
                                           "preset (fp16) is the safe choice."),
              (SDXL_LOW_GIB, "sdxl-12gb", "fits SDXL with the memory-saving preset, or any SD 1.5 preset."),
              (SD15_GIB, "sd15-character", "fits SD 1.5 LoRAs at 512 px; SDXL needs about 12 GB."),
              (MIN_GPU_GIB, "sd15-character", "is tight: SD 1.5 at 512 px may work with batch size 1; SDXL "
                                              "will not fit."),
              (0.0, "demo", "is too little for real models; the demo shows how everything works."))
    preset, why = next((preset, why) for edge, preset, why in ladder if gib >= edge)
    return Recommendation(preset, f"{_gb(gib)} GB of VRAM {why}")


VERSIONED = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "PySide6")


def versions(cuda: str | None = None) -> dict[str, str]:
    """Installed versions for the About box and bug reports, read from package metadata (not by importing).
    `cuda` is the CUDA line when it is already known (`detect_in_child`); else torch is asked here."""
    return {"LoRA Studio": __version__, "Python": platform.python_version(),
            **{name: _dist_version(name) for name in VERSIONED},
            "CUDA": cuda if cuda is not None else _cuda_version(),
            "OS": f"{platform.system()} {platform.release()}".strip()}


def _dist_version(name: str) -> str:
    # PySide6-Essentials installs under its own distribution name
    for dist in (name, "PySide6-Essentials") if name == "PySide6" else (name,):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(dist)
    try:  # a frozen build may lack the metadata folders; the module still knows its version
        module = __import__(name)
        return str(getattr(module, "__version__", "unknown"))
    except Exception:
        return "not installed"


def _cuda_version() -> str:
    try:
        import torch
    except Exception:
        return "unavailable (PyTorch not loaded)"
    built = getattr(torch.version, "cuda", None)
    if not built:
        return "none (CPU build of PyTorch)"
    try:
        usable = bool(torch.cuda.is_available())
    except Exception:
        usable = False
    return built if usable else f"{built} (no usable GPU found)"


@dataclass(frozen=True)
class MachineReport:
    """What a child process found: the devices, and the CUDA line of the About box."""

    hardware: Hardware
    cuda: str


def child_command() -> list[str]:
    """How the window runs `main` below in a child. A frozen app starts itself with `--studio-hardware`
    (`packaging/frozen_main.py`), as it does for the worker."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--studio-hardware"]
    return [sys.executable, "-m", "studio.hardware"]


def detect_in_child(timeout_s: float = 120.0) -> MachineReport:
    """`detect()` and the CUDA version, asked of a short-lived child process, as the window's process never
    imports torch (a broken CUDA install fails there). Never raises: a failed child is `Hardware.error`."""
    try:
        done = subprocess.run(child_command(), capture_output=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
        data = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
        return MachineReport(hardware=from_data(data["hardware"], Hardware), cuda=str(data["cuda"]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError, TypeError, StudioError) as exc:
        why = "it took too long" if isinstance(exc, subprocess.TimeoutExpired) else "it did not answer"
        return MachineReport(Hardware((), None, _cpu_name(), _cpu_count(),
                                      error=f"Hardware detection failed ({why}); training would use the CPU."),
                             cuda="unknown (hardware detection failed)")


def main() -> int:
    """The child's side of `detect_in_child`: one JSON line on stdout."""
    print(json.dumps({"hardware": to_data(detect()), "cuda": _cuda_version()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
