"""What pressing Start will do, in numbers, before it is pressed: steps, epochs, what is trained, how long.

kohya_ss prints images × repeats, epochs and total steps only after the model has loaded; here the same sums
come from the settings and a scan of the folders (no torch, no images decoded), with the duration estimated
for the device and every warning naming the setting to change (issue 18, point 3). The estimate scales a
reference step time per device class (SD 1.5, 512 px, batch 1) by the settings; once the project has a run
of a few steps on the same device, its measured step time, scaled the same way, replaces the guess.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.config import ProjectConfig, _read_toml, load_preset, loads_project, paired_values, resolve_path
from studio.errors import StudioError
from studio.events import Progress, Started
from studio.machine_defaults import Device
from studio.run_folder import list_runs, read_events

#: Seconds per step of SD 1.5 at 512 px, batch 1, LoRA, no gradient checkpointing. The CPU figure is issue
#: 18's 2-thread machine (35.7 s a step); the GPU figures are typical of each class (an RTX 3060 does about
#: 2 steps a second) until `bench/gpu_step.py` is run on such GPUs (bench/results/gpu_step.md: not yet).
REFERENCE_STEP_S = {"cpu": 36.0, "mps": 36.0, "cuda-small": 1.0, "cuda-mid": 0.55, "cuda-large": 0.25,
                    "cuda-huge": 0.12}
REFERENCE_PX = 512
REFERENCE_CPU_THREADS = 2
SDXL_FACTOR = 1.3  # SDXL's UNet is about three times SD 1.5's, but its top level has no attention
CHECKPOINTING_FACTOR = 1.25  # "about 20-30% slower" (the field's help)
DORA_FACTOR = 1.3
TEXT_ENCODER_FACTOR = 1.1
MEASURED_AFTER_STEPS = 3  # a run's first steps include warm-up; its it/s means something after these

LONG_RUN_S = 8 * 3600  # a run longer than a night gets a warning with the Steps that fit in two hours
SLOW_CPU_STEP_S = 15.0  # a CPU step longer than this gets "lower Resolution"
MANY_EPOCHS = 100  # beyond this many epochs a LoRA usually overfits
SMALL_VRAM_CKPT_GIB = 7.0  # below this, SD 1.5 at 512 px needs gradient checkpointing to fit

#: fields that are the project's own content, not settings a preset chooses
NOT_COMPARED = frozenset({("dataset", "folders"), ("dataset", "regularization_folders"), ("model", "path"),
                          ("dataset", "default_caption"), ("sampling", "prompts"), ("sampling", "negative_prompt"),
                          ("sampling", "validation_images"), ("output", "name"), ("output", "directory"),
                          ("output", "trigger_phrase")})

Label = Callable[[str, str], str]


def plain_label(section: str, key: str) -> str:
    """The field name as words; the window passes its form labels instead."""
    return key.replace("_", " ").capitalize()


@dataclass(frozen=True)
class FolderCount:
    name: str
    images: int
    repeats: int


@dataclass(frozen=True)
class Estimate:
    step_s: float
    total_s: float
    basis: str  # where the step time comes from, in words
    measured: bool = False


@dataclass(frozen=True)
class MeasuredSpeed:
    """The step time of the project's last run, and the settings it ran with (to scale from)."""

    step_s: float
    resolution: int
    images_per_step: int
    device: str  # as the run's `started` event names it: "cpu" or the CUDA device's name
    run_name: str


@dataclass(frozen=True)
class Difference:
    section: str
    key: str
    value: Any
    reference: Any


@dataclass(frozen=True)
class Warning:
    text: str  # what is wrong and what to change
    section: str
    key: str


@dataclass(frozen=True)
class PreflightSummary:
    device: Device
    folders: tuple[FolderCount, ...]
    images: int
    per_epoch: int  # images × repeats (plus as many regularisation images), what one epoch shows
    regularization: int
    held_out: int
    batch_size: int
    accumulation: int
    steps_per_epoch: int
    max_steps: int
    epochs: float
    resolution: str
    trained: tuple[str, ...]
    estimate: Estimate
    reference_name: str
    differences: tuple[Difference, ...]
    warnings: tuple[Warning, ...]
    cpu_notice: str | None

    @property
    def images_per_step(self) -> int:
        return self.batch_size * self.accumulation

    def steps_line(self) -> str:
        """"3 × 10 (10_a) + 5 × 2 (2_b) = 40 images an epoch ÷ 2 a step = 20 steps an epoch; 80 steps = 4
        epochs" — kohya's "images × repeats", "epochs" and "total steps" in one line."""
        parts = " + ".join(f"{f.images} × {f.repeats} ({f.name})" for f in self.folders if f.images)
        if not parts:  # nothing to divide yet: say what the run would be once images are added
            return f"{self.max_steps:,} steps of {self.images_per_step} image(s) each, once the dataset has images"
        reg = f" (+ {self.per_epoch // 2} regularisation)" if self.regularization else ""
        held = f", {self.held_out} held out for validation" if self.held_out else ""
        whole = ""
        if self.steps_per_epoch and self.epochs != int(self.epochs):
            below, above = int(self.epochs) * self.steps_per_epoch, (int(self.epochs) + 1) * self.steps_per_epoch
            whole = f"; {below:,} or {above:,} steps give whole epochs" if below else f"; {above:,} give one"
        return (f"{parts}{reg} = {self.per_epoch:,} images an epoch{held} ÷ {self.images_per_step} a step = "
                f"{self.steps_per_epoch:,} steps an epoch; {self.max_steps:,} steps = {epochs_text(self.epochs)}"
                f"{whole}")


def epochs_text(epochs: float) -> str:
    if epochs == int(epochs):
        return f"{int(epochs):,} epoch{'s' if epochs != 1 else ''}"
    return f"{epochs:,.1f} epochs"


def rough_duration(seconds: float) -> str:
    """"40 s", "12 min", "1 h 30 min", "10 h", "3 days": as precise as an estimate deserves."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{round(minutes)} min"
    hours = minutes / 60
    if hours < 3:
        h, m = divmod(round(minutes / 10) * 10, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def step_seconds(cfg: ProjectConfig, device: Device, family: str | None = None,
                 measured: MeasuredSpeed | None = None) -> Estimate:
    """Seconds per optimizer step for `cfg` on `device`, measured where a run on it exists, else estimated."""
    px = cfg.dataset.resolution
    per_step = cfg.schedule.batch_size * cfg.schedule.gradient_accumulation
    if measured is not None and same_device(measured.device, device) and measured.resolution > 0:
        step = measured.step_s * (px / measured.resolution) ** 2 * per_step / max(1, measured.images_per_step)
        return Estimate(step, step * cfg.schedule.max_steps,
                        f"from the last run, {measured.run_name}: {measured.step_s:.2f} s a step measured at "
                        f"{measured.resolution} px, {measured.images_per_step} image(s) a step", measured=True)
    cls = device.device_class
    step = REFERENCE_STEP_S[cls] * (px / REFERENCE_PX) ** 2 * per_step
    if device.on_cpu:  # the reference had 2 threads; more help, less than linearly
        step *= (REFERENCE_CPU_THREADS / max(1, min(device.cpu_threads, 32))) ** 0.75
    factors = ((family == "sdxl", SDXL_FACTOR), (cfg.schedule.gradient_checkpointing, CHECKPOINTING_FACTOR),
               (cfg.network.dora, DORA_FACTOR), (cfg.network.train_text_encoder, TEXT_ENCODER_FACTOR))
    step = math.prod((factor for on, factor in factors if on), start=step)
    return Estimate(step, step * cfg.schedule.max_steps,
                    f"estimated for {_typical(device)}, from {REFERENCE_STEP_S[cls]:g} s a step for SD 1.5 at "
                    f"{REFERENCE_PX} px, one image a step")


def _typical(device: Device) -> str:
    if device.kind == "cuda":
        return f"a typical {device.vram_gib:.0f} GB GPU" if device.vram_gib is not None else "a typical GPU"
    return f"a typical {device.cpu_threads}-thread {'Mac CPU' if device.kind == 'mps' else 'CPU'}"


def differences(cfg: ProjectConfig, reference: ProjectConfig) -> tuple[Difference, ...]:
    return tuple(Difference(*pair) for pair in paired_values(cfg, reference)
                 if pair[:2] not in NOT_COMPARED and pair[2] != pair[3])


def trained_parts(cfg: ProjectConfig, family: str | None = None) -> tuple[str, ...]:
    n = cfg.network
    kind = {"lora": "LoRA", "locon": "LoCon", "loha": "LoHa", "lokr": "LoKr"}[n.type]
    extras = [x for x, on in (("DoRA", n.dora), ("rsLoRA", n.rslora), ("PiSSA init", n.init == "pissa")) if on]
    layers = "transformer layers" if n.targets == "transformer" else "attention only"
    if n.type != "lora":
        layers += f", 3×3 convolutions at rank {n.conv_rank or n.rank}"
    unet = f"UNet: {kind} rank {n.rank}, alpha {n.alpha:g} ({layers})" + (f", {', '.join(extras)}" if extras else "")
    if n.base_quantization != "none":
        unet += f", base weights in {n.base_quantization}"
    encoders = "text encoders (CLIP-L and OpenCLIP-G)" if family == "sdxl" else "text encoder"
    te = (f"{encoders}: {kind} too, learning rate {cfg.optimizer.text_encoder_lr:g}" if n.train_text_encoder
          else f"{encoders}: not trained")
    return unet, te


def resolution_text(cfg: ProjectConfig) -> str:
    d = cfg.dataset
    if not d.bucketing:
        return f"{d.resolution} × {d.resolution} px, centre-cropped"
    lo = d.bucket_min_side or d.resolution // 2
    hi = d.bucket_max_side or d.resolution * 2
    return f"aspect-ratio buckets of about {d.resolution}² px (sides {lo}-{hi}, multiples of {d.bucket_step})"


def summarize(cfg: ProjectConfig, device: Device, folders: Sequence[FolderCount], *, regularization: int = 0,
              reference: ProjectConfig | None = None, reference_name: str = "the defaults",
              family: str | None = None, measured: MeasuredSpeed | None = None,
              label: Label = plain_label) -> PreflightSummary:
    """The summary for `cfg` with the dataset counted as `folders` (images and repeats per folder)."""
    images = sum(f.images for f in folders)
    held = _held_out(cfg, images)
    # held-out images are dropped before repeats; spread them over the folders in proportion
    repeated = sum(f.images * f.repeats for f in folders)
    if held and images:
        repeated = round(repeated * (images - held) / images)
    per_epoch = repeated * (2 if regularization and repeated else 1)
    s = cfg.schedule
    per_step = s.batch_size * s.gradient_accumulation
    steps_per_epoch = max(1, math.ceil(per_epoch / per_step)) if per_epoch else 0
    epochs = s.max_steps / steps_per_epoch if steps_per_epoch else 0.0
    estimate = step_seconds(cfg, device, family, measured)
    summary = PreflightSummary(
        device=device, folders=tuple(folders), images=images, per_epoch=per_epoch, regularization=regularization,
        held_out=held, batch_size=s.batch_size, accumulation=s.gradient_accumulation,
        steps_per_epoch=steps_per_epoch, max_steps=s.max_steps, epochs=epochs, resolution=resolution_text(cfg),
        trained=trained_parts(cfg, family), estimate=estimate, reference_name=reference_name,
        differences=differences(cfg, reference or ProjectConfig()), warnings=(), cpu_notice=_cpu_notice(device,
                                                                                                  estimate))
    return _with_warnings(summary, cfg, family, label)


def _held_out(cfg: ProjectConfig, images: int) -> int:
    """As `studio.train.validation`: validation_percent of the images, at least one (no validation_images)."""
    pct = cfg.sampling.validation_percent
    if pct <= 0 or cfg.sampling.validation_images or not images:
        return 0
    return min(images, max(1, round(images * pct / 100)))


def _cpu_notice(device: Device, estimate: Estimate) -> str | None:
    if not device.on_cpu:
        return None
    took = rough_duration(estimate.total_s)
    first = ("This Mac's GPU is not used for training, so it runs on the CPU" if device.kind == "mps"
             else "This machine has no usable GPU")
    return (f"{first}: training will be very slow (about {took} for these settings). Lower Steps or "
            "Resolution, or train on a machine with an NVIDIA GPU.")


def _with_warnings(summary: PreflightSummary, cfg: ProjectConfig, family: str | None,
                   label: Label) -> PreflightSummary:
    out: list[Warning] = []
    add = lambda text, section, key: out.append(Warning(text, section, key))  # noqa: E731
    res, steps, est = cfg.dataset.resolution, cfg.schedule.max_steps, summary.estimate
    L = label  # noqa: N806
    if not cfg.model.path.strip():
        add(f"No base model yet: choose one in {L('model', 'path')} (an SD 1.5 or SDXL checkpoint you own).",
            "model", "path")
    if not cfg.dataset.folders:
        add(f"No image folders yet: add one in the Dataset panel or in {L('dataset', 'folders')}.",
            "dataset", "folders")
    elif summary.images == 0:
        add(f"The folders in {L('dataset', 'folders')} hold no images: add images, or choose other folders.",
            "dataset", "folders")
    if summary.device.on_cpu and est.step_s > SLOW_CPU_STEP_S:
        smaller = max(64, min(256, res // 2) // 64 * 64)
        add(f"{L('dataset', 'resolution')} {res} on a CPU: about {rough_duration(est.step_s)} a step — lower "
            f"{L('dataset', 'resolution')} to {smaller}, or train on a machine with an NVIDIA GPU.",
            "dataset", "resolution")
    if est.total_s > LONG_RUN_S:
        fit = max(1, int(2 * 3600 / est.step_s))
        add(f"{steps:,} steps will take about {rough_duration(est.total_s)}: lower {L('schedule', 'max_steps')} "
            f"to about {fit:,} for a two-hour run.", "schedule", "max_steps")
    if summary.steps_per_epoch and summary.epochs < 1:
        add(f"{L('schedule', 'max_steps')} {steps:,} is less than one epoch ({summary.steps_per_epoch:,} steps): "
            f"some images are never trained on — raise {L('schedule', 'max_steps')} to at least "
            f"{summary.steps_per_epoch:,}.", "schedule", "max_steps")
    elif summary.epochs > MANY_EPOCHS:
        fit = summary.steps_per_epoch * 20
        add(f"{steps:,} steps are {summary.epochs:,.0f} epochs of {summary.images} images: the LoRA will likely "
            f"overfit — lower {L('schedule', 'max_steps')} to about {fit:,} (20 epochs), or add images.",
            "schedule", "max_steps")
    if family == "sdxl" and res < 768:
        add(f"SDXL at {L('dataset', 'resolution')} {res}: SDXL learns and renders at 1024 px — raise "
            f"{L('dataset', 'resolution')} to 1024.", "dataset", "resolution")
    vram = summary.device.vram_gib
    if vram is not None and family == "sdxl" and vram < 11 and not cfg.schedule.gradient_checkpointing:
        add(f"SDXL in {vram:.0f} GB of VRAM will not fit without {L('schedule', 'gradient_checkpointing')}: turn it "
            "on (or use the sdxl-12gb preset).", "schedule", "gradient_checkpointing")
    elif vram is not None and vram < SMALL_VRAM_CKPT_GIB and not cfg.schedule.gradient_checkpointing:
        add(f"{vram:.0f} GB of VRAM: turn on {L('schedule', 'gradient_checkpointing')} so the run does not run out "
            "of memory.", "schedule", "gradient_checkpointing")
    return replace(summary, warnings=tuple(out))


def folder_counts(folders: Sequence[str | Path], *, caption_extension: str = ".txt", default_repeats: int = 1,
                  project_dir: Path | None = None) -> tuple[FolderCount, ...]:
    """Pool thread: images and repeats per folder (kohya `N_name` subfolders included, the Dataset panel's
    exclusions and repeat overrides applied), without decoding an image. Missing folders count zero."""
    from studio.dataset.state import load_state
    from studio.dataset.scan import scan_folders

    try:
        state = load_state(project_dir) if project_dir is not None else None
    except StudioError:
        state = None  # a damaged dataset.json: the preflight check before Start reports it
    scan = scan_folders(folders, caption_extension=caption_extension, default_repeats=default_repeats,
                        state=state)
    counts = Counter((rec.folder, rec.repeats) for rec in scan.images)
    return tuple(FolderCount(folder.name, n, repeats) for (folder, repeats), n in counts.items())


def measured_speed(project_dir: Path) -> MeasuredSpeed | None:
    """Pool thread: the step time of the newest run of the project that did at least a few steps."""
    for run in sorted(list_runs(project_dir), key=lambda r: r.modified, reverse=True):
        if run.last_step <= MEASURED_AFTER_STEPS or not run.config_text:
            continue
        events = read_events(run.path / "events.jsonl")
        device = next((e.device for e in events if isinstance(e, Started)), "")
        rates = [e.it_per_s for e in events if isinstance(e, Progress) and e.step > MEASURED_AFTER_STEPS
                 and e.it_per_s > 0]
        if not rates:
            continue
        try:
            cfg = loads_project(run.config_text, str(run.path / "config.toml"))
        except Exception:
            continue
        return MeasuredSpeed(1.0 / sorted(rates)[len(rates) // 2], cfg.dataset.resolution,
                             cfg.schedule.batch_size * cfg.schedule.gradient_accumulation, device, run.name)
    return None


def same_device(run_device: str, device: Device) -> bool:
    """The engine's `started.device` is "cpu" or the CUDA device's name, as the worker's `ready.device`."""
    if device.on_cpu:
        return run_device.strip().lower() == "cpu"
    return run_device.strip() == device.name


@dataclass(frozen=True)
class Gathered:
    """What the summary needs from the disk, read on a pool thread; `preset` is the reference."""

    folders: tuple[FolderCount, ...]
    regularization: int
    measured: MeasuredSpeed | None
    preset: tuple[ProjectConfig, str] | None


def gather(cfg: ProjectConfig, project_file: Path | None, preset: str | None = None) -> Gathered:
    """Pool thread: everything `summarize` needs besides the settings and the device. `preset`: the one the
    user applied in this session (else the one the project file names, if any)."""
    from studio.dataset.scan import scan_folders

    project_dir = Path(project_file).resolve().parent if project_file else None
    folders = [resolve_path(project_file, f) for f in cfg.dataset.folders]
    counts = folder_counts(folders, caption_extension=cfg.dataset.caption_extension,
                           default_repeats=cfg.dataset.repeats, project_dir=project_dir)
    regs = [resolve_path(project_file, f) for f in cfg.dataset.regularization_folders]
    reg = len(scan_folders(regs).images) if regs else 0
    measured = measured_speed(project_dir) if project_dir else None
    named = (load_preset(preset), f"preset {preset}") if preset else project_preset(project_file)
    return Gathered(counts, reg, measured, named)


def project_preset(project_file: Path | None) -> tuple[ProjectConfig, str] | None:
    """The preset a project file names (`preset = "sd15-character"`), loaded, with its display name."""
    if project_file is None or not Path(project_file).is_file():
        return None
    try:
        name = _read_toml(Path(project_file)).get("preset")
        return (load_preset(name), f"preset {name}") if isinstance(name, str) else None
    except StudioError:
        return None
