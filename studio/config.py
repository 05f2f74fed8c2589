"""The project file (`project.toml`) as typed, frozen dataclasses.

Every field carries its help text in `metadata["help"]` (and its range), so the CLI help, the GUI tooltips
and the error messages come from one source. Loading is strict: an unknown key or a wrongly typed value is
an error naming the file, the key and what was expected, because a silently ignored typo is how users of
other trainers lose a night of GPU time.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import tomli_w

from studio.codec import CodecError, describe, from_data, to_data
from studio.errors import ConfigError, Problem, StudioError
from studio.fileio import atomic_write_bytes
from studio.resources import presets_dir
from studio.safe_names import file_name_problem, safe_file_name
from studio.textfile import NotUtf8Error, decode_text, normalize_text
from studio.safe_read import read_capped

PROJECT_FORMAT_VERSION = 1
#: a project file is a few kilobytes; one of megabytes is not ours (and reading it whole would be the risk)
PROJECT_FILE_LIMIT = 4 * 2**20


def _f(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
       advanced: bool = False) -> Any:
    """A field with its help text and range; a choice field's choices are its `Literal` type's values."""
    bounds = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    return field(default=default, metadata={"help": help, "advanced": advanced, **bounds})


@dataclass(frozen=True)
class DatasetConfig:
    folders: tuple[str, ...] = _f((), "Image folders. A folder named like `10_name` is repeated 10 times per "
                                      "epoch (the kohya convention). A `folder.toml` inside a folder overrides, for "
                                      "that folder only: repeats, keep_tokens, shuffle_captions, caption_dropout, "
                                      "tag_dropout, flip and loss_weight.")
    resolution: int = _f(512, "Training resolution in pixels; images are resized and centre-cropped to it. With "
                              "bucketing, every bucket has about this many pixels (resolution²).", lo=64, hi=2048)
    caption_extension: str = _f(".txt", "Extension of the caption file beside each image.")
    default_caption: str = _f("", "Caption used for images that have no caption file.")
    repeats: int = _f(1, "Repeats per epoch for folders whose name carries no `N_` prefix.", lo=1, hi=1000)
    bucketing: bool = _f(False, "Aspect-ratio bucketing: train each image at the bucket (width × height, multiples "
                                "of the bucket step, about resolution² pixels) closest to its own aspect ratio "
                                "instead of a centre-cropped square; every batch holds one bucket.")
    bucket_min_side: int = _f(0, "Smallest bucket side in pixels (0: half the resolution).", lo=0, hi=4096,
                              advanced=True)
    bucket_max_side: int = _f(0, "Largest bucket side in pixels (0: twice the resolution).", lo=0, hi=8192,
                              advanced=True)
    bucket_step: int = _f(64, "Bucket sides are multiples of this (a multiple of 8; 64 is the usual choice).",
                          lo=8, hi=256, advanced=True)
    bucket_no_upscale: bool = _f(False, "Never enlarge an image to fill its bucket: images smaller than the "
                                        "resolution are trained at their own size (rounded down to the bucket "
                                        "step).", advanced=True)
    shuffle_captions: bool = _f(False, "Shuffle the comma-separated tags of a caption each time it is used, so no "
                                       "tag position is learnt (kohya's shuffle_caption).")
    keep_tokens: int = _f(0, "Keep the first N comma-separated tags in place (e.g. the trigger word) when "
                             "shuffling or dropping tags.", lo=0, hi=255)
    caption_dropout: float = _f(0.0, "Probability of using an empty caption for an image, which keeps the "
                                     "unconditional prediction (and so CFG) working.", lo=0.0, hi=1.0, advanced=True)
    tag_dropout: float = _f(0.0, "Probability of leaving out each tag (after the kept ones) each time a caption "
                                 "is used.", lo=0.0, hi=1.0, advanced=True)
    flip: bool = _f(False, "Random horizontal flip: each use of an image is mirrored with probability 0.5. Both "
                           "the image and its mirror are VAE-encoded once and cached (a latent cannot be mirrored "
                           "exactly), so this doubles the latent memory. Avoid it for asymmetric subjects.")
    regularization_folders: tuple[str, ...] = _f((), "Class (regularisation) image folders for prior preservation: "
                                                     "each epoch mixes in as many class images as training images.")
    prior_loss_weight: float = _f(1.0, "Loss weight of the regularisation images.", lo=0.0, hi=10.0, advanced=True)
    masked_loss: bool = _f(False, "Learn only where a mask says so: for `a.png`, a greyscale `masks/a.png` in the "
                                  "same folder (white: learn, black: ignore). Images without one are learnt "
                                  "everywhere.", advanced=True)
    latent_cache: Literal["memory", "disk"] = _f(
        "memory", "Where encoded latents are kept: in memory for this run, or also on disk (`.cache/latents` beside "
                  "the project) so the next run skips the VAE; a cached latent is re-encoded when its image, the "
                  "bucket size, the VAE or the flip setting changes.", advanced=True)


@dataclass(frozen=True)
class ModelConfig:
    path: str = _f("", "Base model: a diffusers folder or a single-file .safetensors / .ckpt checkpoint.")
    family: Literal["auto", "sd1", "sd2", "sd2-v", "sdxl"] = _f(
        "auto", "Model family; `auto` detects it from the weights.")
    prediction: Literal["auto", "epsilon", "v_prediction"] = _f(
        "auto", "What the UNet predicts; `auto` takes it from the model's scheduler config.")
    clip_skip: int = _f(1, "Use the text encoder's N-th last layer (2 is common for anime models).", lo=1, hi=4)
    ema: Literal["auto", "use", "ignore"] = _f(
        "auto", "Checkpoints with EMA weights (model_ema.*): `auto` and `ignore` train on the non-EMA weights, as "
                "the WebUIs load them; `use` trains on the EMA copy.",
        advanced=True)


@dataclass(frozen=True)
class NetworkConfig:
    rank: int = _f(16, "LoRA rank (network dim): capacity of the adapter. 8-32 is typical.", lo=1, hi=1024)
    alpha: float = _f(8.0, "LoRA alpha: the update is scaled by alpha / rank.", lo=0.0, hi=4096.0)
    dropout: float = _f(0.0, "Dropout on the LoRA path during training.", lo=0.0, hi=0.9)
    targets: Literal["transformer", "attention"] = _f(
        "transformer", "Which UNet layers get LoRA: every linear and 1x1 conv in the transformer blocks "
                       "(kohya's default) or the attention projections only (lighter).")
    train_text_encoder: bool = _f(False, "Also train LoRA on the text encoder(s).")
    type: Literal["lora", "locon", "loha", "lokr"] = _f(
        "lora", "Adapter type. `lora`: low-rank update of the transformer layers. `locon`: LoRA that also adapts "
                "the 3x3 convolutions of the ResNet blocks. `loha` (Hadamard product) and `lokr` (Kronecker "
                "product): LyCORIS types, transformer layers and convolutions. All export in the layout the WebUIs "
                "and ComfyUI load.")
    conv_rank: int = _f(0, "Rank of the adapters on 3x3 convolutions for locon, loha and lokr (0: the same as "
                           "rank).", lo=0, hi=1024)
    conv_alpha: float = _f(0.0, "Alpha of the convolution adapters (0: the same as alpha).", lo=0.0, hi=4096.0)
    dora: bool = _f(False, "DoRA: learn each weight's magnitude and direction separately (peft `use_dora`); for "
                           "lora and locon. Slower per step; often better at low rank.")
    rslora: bool = _f(False, "Rank-stabilised LoRA: scale by alpha / sqrt(rank) instead of alpha / rank, so higher "
                             "ranks keep learning. The export writes alpha x sqrt(rank) so WebUIs apply the same "
                             "update.", advanced=True)
    init: Literal["default", "pissa"] = _f(
        "default", "Adapter initialisation. `default`: the update starts at zero (as sd-scripts). `pissa`: start "
                   "from the weights' principal singular vectors (PiSSA; faster convergence); the export is the "
                   "difference from the start, at twice the rank. lora and locon only.", advanced=True)
    lokr_factor: int = _f(-1, "LoKr: split each dimension with this factor (-1: as square as possible).", lo=-1,
                          hi=1024, advanced=True)
    base_quantization: Literal["none", "int8", "nf4"] = _f(
        "none", "QLoRA-style low-VRAM mode: keep the frozen UNet in 8-bit or 4-bit NF4 (bitsandbytes) and train "
                "the adapter on top. NVIDIA GPUs only.", advanced=True)


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adamw", "adamw8bit", "lion", "prodigy", "adafactor", "schedule_free_adamw"] = _f(
        "adamw", "Optimizer. `adamw8bit`: AdamW with 8-bit state (bitsandbytes), less memory. `lion`: sign-based, "
                 "use a 3-10x smaller learning rate. `prodigy`: finds the step size itself, set learning rates to "
                 "1.0. `adafactor`: factored second moments, least memory. `schedule_free_adamw`: no learning-rate "
                 "schedule needed (the schedule is ignored).")
    unet_lr: float = _f(1e-4, "Learning rate for the UNet LoRA.", lo=0.0, hi=1.0)
    text_encoder_lr: float = _f(5e-5, "Learning rate for the text-encoder LoRA.", lo=0.0, hi=1.0)
    weight_decay: float = _f(1e-2, "AdamW weight decay.", lo=0.0, hi=1.0)
    betas: tuple[float, float] = _f((0.9, 0.999), "AdamW betas (each from 0 up to, not including, 1).", lo=0.0,
                                    hi=0.99999999)
    eps: float = _f(1e-8, "AdamW epsilon.", lo=0.0, hi=1.0, advanced=True)
    max_grad_norm: float = _f(1.0, "Clip the gradient norm to this value (0 disables clipping).", lo=0.0, hi=1e6)
    loss: Literal["mse", "l1", "huber"] = _f(
        "mse", "Loss between prediction and target. `huber` (pseudo-Huber) is quadratic for small errors and "
               "linear for large ones, so outlier images pull less.", advanced=True)
    huber_c: float = _f(0.1, "Huber loss: where it turns from quadratic to linear.", lo=1e-4, hi=10.0,
                        advanced=True)
    min_snr_gamma: float = _f(0.0, "Min-SNR-γ weighting: down-weights the easy low-noise timesteps so training "
                                   "converges faster (5 is the paper's value); 0 turns it off.", lo=0.0, hi=100.0)
    lora_plus_ratio: float = _f(0.0, "LoRA+: the up (B) matrices learn this many times faster than the down (A) "
                                     "matrices (16 is the paper's value); 0 turns it off. lora and locon only.",
                                lo=0.0, hi=1024.0, advanced=True)
    ema_decay: float = _f(0.0, "Keep an exponential moving average of the LoRA weights with this decay (e.g. "
                               "0.999) and export and preview it instead of the raw weights; 0 turns it off.",
                          lo=0.0, hi=0.999999, advanced=True)


@dataclass(frozen=True)
class ScheduleConfig:
    max_steps: int = _f(1000, "Optimizer steps to train.", lo=1, hi=10_000_000)
    batch_size: int = _f(1, "Images per step on each device.", lo=1, hi=256)
    gradient_accumulation: int = _f(1, "Accumulate gradients over N batches per optimizer step.", lo=1, hi=256)
    lr_scheduler: Literal["constant", "linear", "cosine", "cosine_with_restarts", "polynomial"] = _f(
        "constant", "Learning-rate schedule after warm-up.")
    warmup_steps: int = _f(0, "Steps of linear learning-rate warm-up.", lo=0, hi=10_000_000)
    warmup_ratio: float = _f(0.0, "Warm-up as a fraction of the run (e.g. 0.05); used instead of warmup_steps when "
                                  "above 0.", lo=0.0, hi=1.0, advanced=True)
    lr_cycles: int = _f(1, "cosine_with_restarts: how many cosine cycles (hard restarts) the run has.", lo=1,
                        hi=1000, advanced=True)
    lr_power: float = _f(1.0, "polynomial: the decay's power (1 is linear).", lo=0.01, hi=10.0, advanced=True)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = _f(
        "auto", "Mixed precision on CUDA (`auto`: bf16 where supported, else fp16; always fp32 on CPU).")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: much less VRAM, "
                                             "about 20-30% slower.")
    seed: int = _f(42, "Random seed; the same seed gives the same run on the same hardware.", lo=0, hi=2**32 - 1)
    noise_offset: float = _f(0.0, "Noise offset: adds a per-channel constant to the noise so the model can learn "
                                  "very dark and very bright images (0.05-0.1 is typical); 0 turns it off.",
                             lo=0.0, hi=1.0, advanced=True)
    pyramid_noise_iterations: int = _f(0, "Multi-resolution (pyramid) noise: add this many levels of "
                                          "lower-resolution noise (6-10 is typical); 0 turns it off.", lo=0, hi=16,
                                       advanced=True)
    pyramid_noise_discount: float = _f(0.3, "Pyramid noise: strength of each coarser level relative to the one "
                                            "before.", lo=0.0, hi=1.0, advanced=True)
    input_perturbation: float = _f(0.0, "Input perturbation: extra noise on the UNet's input but not on its target, "
                                        "which reduces exposure bias (0.1 is the paper's value); 0 turns it off.",
                                   lo=0.0, hi=1.0, advanced=True)
    zero_terminal_snr: bool = _f(False, "Rescale the noise schedule so the last timestep is pure noise (zero "
                                        "terminal SNR). Needs a v-prediction model; previews sample with "
                                        "trailing timesteps.", advanced=True)
    channels_last: Literal["auto", "on", "off"] = _f(
        "auto", "Channels-last memory format for the UNet: faster convolutions on NVIDIA GPUs (`auto`: on with "
                "CUDA, off on the CPU).", advanced=True)
    compile_unet: bool = _f(False, "Compile the UNet with torch.compile: faster steps after a slow first one "
                                   "(minutes on real models).", advanced=True)


@dataclass(frozen=True)
class SamplingConfig:
    every_n_steps: int = _f(0, "Render preview images every N steps (0: only at the end).", lo=0, hi=10_000_000)
    prompts: tuple[str, ...] = _f((), "Preview prompts.")
    negative_prompt: str = _f("", "Negative prompt for previews.")
    seed: int = _f(1234, "Seed for previews, so previews at different steps are comparable.", lo=0, hi=2**32 - 1)
    steps: int = _f(20, "Denoising steps per preview.", lo=1, hi=200)
    guidance_scale: float = _f(7.0, "Classifier-free guidance scale for previews.", lo=0.0, hi=30.0)
    width: int = _f(0, "Preview width (0: the training resolution).", lo=0, hi=4096)
    height: int = _f(0, "Preview height (0: the training resolution).", lo=0, hi=4096)
    on_save: bool = _f(False, "Also render the previews at every save, so each saved LoRA has its row in the grid.")
    grid: bool = _f(True, "Assemble the previews into samples/grid.png: one row per step, one column per prompt, "
                          "the same seeds in every row, to pick the best step at a glance.")
    validation_percent: float = _f(0.0, "Hold out this percentage of the training images (at least one) for a "
                                        "validation loss; 0 holds out none.", lo=0.0, hi=50.0)
    validation_images: tuple[str, ...] = _f((), "Validation images or folders, held out of training (instead of a "
                                                "percentage).")
    validation_every_n_steps: int = _f(0, "Compute the validation loss every N steps (0: only at the end, when "
                                          "there are validation images). A note is logged when it turns upward.",
                                       lo=0, hi=10_000_000)
    validation_timesteps: int = _f(4, "Validation loss: evenly spaced timesteps, each with fixed noise, averaged.",
                                   lo=1, hi=100, advanced=True)
    validation_seed: int = _f(0, "Seed of the validation noise (fixed, so values are comparable across steps).",
                              lo=0, hi=2**32 - 1, advanced=True)


@dataclass(frozen=True)
class OutputConfig:
    name: str = _f("lora", "Name of the exported LoRA file (without extension); also its alias in the WebUI.")
    directory: str = _f("output", "Where exported LoRAs are written (relative to the project file).")
    save_every_n_steps: int = _f(0, "Save a resumable checkpoint and an export every N steps (0: only at the end).",
                                 lo=0, hi=10_000_000)
    keep_checkpoints: int = _f(3, "Keep only the newest N resumable checkpoints.", lo=1, hi=1000)
    dtype: Literal["fp16", "bf16", "fp32"] = _f("fp16", "Precision of the exported weights.")
    trigger_phrase: str = _f("", "Trigger word(s) written into the file's metadata.")
    tensorboard: bool = _f(True, "Also write TensorBoard event files into the run folder (`tensorboard --logdir "
                                 "runs`).")


@dataclass(frozen=True)
class ProjectConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def with_section(self, section: str, /, **changes: Any) -> "ProjectConfig":
        """A copy with some fields of one section changed (configs are frozen)."""
        return replace(self, **{section: replace(getattr(self, section), **changes)})


SECTIONS: tuple[str, ...] = tuple(f.name for f in fields(ProjectConfig))


def section_type(name: str) -> type:
    return get_type_hints(ProjectConfig)[name]


def paired_values(a: ProjectConfig, b: ProjectConfig) -> Iterator[tuple[str, str, Any, Any]]:
    """(section, key, a's value, b's value) for every field, in the project file's order."""
    for section in SECTIONS:
        mine, theirs = getattr(a, section), getattr(b, section)
        for f in fields(mine):
            yield section, f.name, getattr(mine, f.name), getattr(theirs, f.name)


# --------------------------------------------------------------------------------------------------
# Checking TOML values (and the form's and the CLI's) against typed fields


def _type_problem(section: str, key: str, value: Any, tp: Any) -> tuple[Any, Problem | None]:
    """`value` converted to `tp` by the one codec, or the problem in our words (`[optimizer] betas[1] is 'x',
    expected a number`: a list's wrong item is named by its index)."""
    try:
        return from_data(value, tp), None
    except CodecError as exc:
        text = str(exc)
        expected = text.rpartition(", expected ")[2] if ", expected " in text else describe(tp)
        where, shown = f"[{section}] {key}", value
        item = re.fullmatch(r"\[(\d+)\]", exc.path or "")
        if item and isinstance(value, (list, tuple)) and int(item.group(1)) < len(value):
            where, shown = f"{where}{exc.path}", value[int(item.group(1))]
        return value, Problem(section, key, f"{where} is {shown!r}, expected {expected}")


def _range_problem(value: Any, meta: dict[str, Any]) -> str | None:
    """What is wrong with one value's bounds (`is nan, expected a finite number`), or None."""
    if isinstance(value, float) and not math.isfinite(value):  # `nan < lo` is False: it would pass the range
        return f"is {value}, expected a finite number"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            return f"is {value}, expected a value between {lo} and {hi}"
    return None


def _field_problem(section: str, key: str, value: Any, tp: Any, meta: dict[str, Any]) -> tuple[Any, Problem | None]:
    """`value` as the field's type, or the problem with it; each number of a list on its own (`betas[1]`)."""
    coerced, problem = _type_problem(section, key, value, tp)
    if problem is not None:
        return value, problem
    items = enumerate(coerced) if isinstance(coerced, tuple) else [(None, coerced)]
    for i, item in items:
        if (wrong := _range_problem(item, meta)) is not None:
            return value, Problem(section, key, f"[{section}] {key}{'' if i is None else f'[{i}]'} {wrong}")
    found = file_name_problem_of(section, key, coerced) if (section, key) in FILE_NAME_FIELDS else None
    return (value, found) if found is not None else (coerced, None)


#: Fields whose value becomes a file name: refused when it could not be one on every system (a shared project
#: file must not write outside its output folder, nor make a hidden or a device file), with the fix named.
FILE_NAME_FIELDS = frozenset({("output", "name")})


def file_name_problem_of(section: str, key: str, value: str) -> Problem | None:
    """The problem with a file-name field's value (also run by `studio.validate` on configs made in code)."""
    problem = file_name_problem(value)
    if problem is None:
        return None
    shown = value if len(value) <= 60 else value[:57] + "..."
    return Problem(section, key, f"[{section}] {key} is {shown!r}, which cannot be a file name: {problem}",
                   hint=f"use a plain name, for example {safe_file_name(value, 'lora')!r}")


def build_section(section: str, values: dict[str, Any], base: Any, source: str) -> Any:
    """Apply `values` (from TOML, a preset, CLI flags or the form) onto the dataclass instance `base`; a wrong
    value raises ConfigError naming its section and key (as data: the form highlights that field)."""
    cls = type(base)
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            hint = _did_you_mean(key, known, "`{}`")
            raise ConfigError(f"{source}: unknown key `{key}` in [{section}]{hint}; "
                              f"known keys: {', '.join(sorted(known))}", section=section, key=key)
        coerced, problem = _field_problem(section, key, value, hints[key], dict(known[key].metadata))
        if problem is not None:
            raise ConfigError.from_problems([problem], source)
        changes[key] = coerced
    return replace(base, **changes)


def _did_you_mean(word: str, known: Any, shape: str) -> str:
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {shape.format(match[0])}?)" if match else ""


def apply_mapping(cfg: ProjectConfig, data: dict[str, Any], source: str) -> ProjectConfig:
    """Overlay a nested mapping `{section: {key: value}}` onto `cfg`, strictly."""
    for section, values in data.items():
        if section in ("format_version", "preset"):
            continue
        if section not in SECTIONS:
            hint = _did_you_mean(section, SECTIONS, "[{}]")
            raise ConfigError(f"{source}: unknown section [{section}]{hint}; "
                              f"known sections: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: `{section}` must be a table ([{section}]), not {type(values).__name__}")
        cfg = replace(cfg, **{section: build_section(section, values, getattr(cfg, section), source)})
    return cfg


# --------------------------------------------------------------------------------------------------
# Presets and project files


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    if not os.path.lexists(path):
        raise ConfigError(f"{path}: file not found")
    # a FIFO would block for ever, /dev/zero fill the memory: only a regular file of sane size is read
    raw = read_capped(path, "project file", limit=PROJECT_FILE_LIMIT, error=ConfigError,
                      hint="choose a project.toml file")
    try:
        return tomllib.loads(decode_text(raw))  # a BOM and CRLF, as Notepad saves it, are fine
    except NotUtf8Error as exc:
        raise ConfigError(f"{path}: not a text file LoRA Studio can read: {exc.reason}",
                          hint="TOML files are UTF-8 text; save it again as UTF-8 in your editor") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number; arrays nested thousands deep
        raise ConfigError(f"{path}: not a project file this app can read ({type(exc).__name__}: "
                          f"{str(exc)[:80]})", hint="the file is damaged; restore its backup (.bak)") from None


def load_preset(name: str, base: ProjectConfig | None = None) -> ProjectConfig:
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset `{name}`; available: {', '.join(preset_names())}")
    return apply_mapping(base or ProjectConfig(), _read_toml(path), str(path))


def load_project(path: str | Path) -> ProjectConfig:
    """Read a project file: defaults, then its `preset = "…"` if any, then its own sections."""
    return _project_from_mapping(_read_toml(Path(path)), str(path))


def loads_project(text: str, source: str) -> ProjectConfig:
    """A project from TOML text (the worker's `start` command carries one), read exactly as a file is."""
    try:
        data = tomllib.loads(normalize_text(text))  # as a file: a BOM and CRLF are fine
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number; arrays nested thousands deep
        raise ConfigError(f"{source}: not readable settings ({type(exc).__name__}: {str(exc)[:80]})") from None
    return _project_from_mapping(data, source)


def _project_from_mapping(data: dict[str, Any], source: str) -> ProjectConfig:
    version = data.get("format_version", PROJECT_FORMAT_VERSION)
    if not isinstance(version, int) or version > PROJECT_FORMAT_VERSION:
        raise ConfigError(f"{source}: written by a newer LoRA Studio (format_version {version}, "
                          f"this version reads up to {PROJECT_FORMAT_VERSION}); update LoRA Studio")
    cfg = ProjectConfig()
    preset = data.get("preset")
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"{source}: `preset` must be a string naming a preset")
        cfg = load_preset(preset, cfg)
    return apply_mapping(cfg, data, source)


def dumps_project(cfg: ProjectConfig) -> str:
    return tomli_w.dumps({"format_version": PROJECT_FORMAT_VERSION, **to_data(cfg)})


def save_project(cfg: ProjectConfig, path: str | Path) -> None:
    """Write atomically; the previous version is kept as `<name>.bak` so a bad save can be undone."""
    path = Path(path)
    if os.path.lexists(path):
        current = read_capped(path, "project file", limit=PROJECT_FILE_LIMIT, error=ConfigError,
                              hint="save the project under another name")
        try:
            load_project(path)
            keep = path.with_suffix(path.suffix + ".bak")
        except StudioError:  # a damaged file must not replace the last good backup: keep it under its own name
            keep = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        atomic_write_bytes(keep, current)
    atomic_write_bytes(path, dumps_project(cfg).encode("utf-8"))


def resolve_path(project_file: str | Path | None, value: str) -> Path:
    """Paths in a project file are relative to the file's folder."""
    p = Path(value).expanduser()
    if p.is_absolute() or project_file is None:
        return p
    return Path(project_file).resolve().parent / p


#: The fields that name files the project reads (as opposed to where it writes: output.directory).
INPUT_PATH_FIELDS: tuple[tuple[str, str], ...] = (
    ("model", "path"), ("dataset", "folders"), ("dataset", "regularization_folders"),
    ("sampling", "validation_images"),
)


def rebase_paths(cfg: ProjectConfig, old_project: str | Path | None, new_project: str | Path) -> ProjectConfig:
    """The config for the project file saved somewhere else ("Save as"): relative input paths are rewritten to
    point at the same model and images from the new folder. Absolute paths stay; the output directory stays
    relative, so the copy writes its own exports beside itself."""
    if old_project is None:
        return cfg
    old_dir = Path(old_project).resolve().parent
    new_dir = Path(new_project).resolve().parent
    if old_dir == new_dir:
        return cfg

    def moved(value: str) -> str:
        if not value or Path(value).expanduser().is_absolute():
            return value
        target = old_dir / value
        try:
            return Path(os.path.relpath(target, new_dir)).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            return str(target)

    for section, name in INPUT_PATH_FIELDS:
        value = getattr(getattr(cfg, section), name)
        new = tuple(moved(v) for v in value) if isinstance(value, tuple) else moved(value)
        cfg = cfg.with_section(section, **{name: new})
    return cfg

