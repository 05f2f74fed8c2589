"""The project file (`project.toml`) as typed, frozen dataclasses.

Every field carries its help text in `metadata["help"]` (and a range where it has one), so the CLI help,
the GUI tooltips and the error messages come from one source. Loading is strict: an unknown key or a
value of the wrong type is an error that names the file, the key and what was expected, because a
silently ignored typo is how users of other trainers lose a night of GPU time.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import tomli_w

from studio.errors import ConfigError
from studio.fileio import atomic_write_bytes
from studio.resources import presets_dir

PROJECT_FORMAT_VERSION = 1


def _f(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
       choices: tuple[str, ...] | None = None, advanced: bool = False) -> Any:
    meta: dict[str, Any] = {"help": help, "advanced": advanced}
    if lo is not None:
        meta["min"] = lo
    if hi is not None:
        meta["max"] = hi
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DatasetConfig:
    folders: tuple[str, ...] = _f((), "Image folders. A folder named like `10_name` is repeated 10 times per "
                                      "epoch (the kohya convention).")
    resolution: int = _f(512, "Training resolution in pixels; images are resized and centre-cropped to it.",
                         lo=64, hi=2048)
    caption_extension: str = _f(".txt", "Extension of the caption file beside each image.")
    default_caption: str = _f("", "Caption used for images that have no caption file.")
    repeats: int = _f(1, "Repeats per epoch for folders whose name carries no `N_` prefix.", lo=1, hi=1000)


@dataclass(frozen=True)
class ModelConfig:
    path: str = _f("", "Base model: a diffusers folder or a single-file .safetensors checkpoint.")
    family: Literal["auto", "sd1", "sd2", "sd2-v", "sdxl"] = _f(
        "auto", "Model family; `auto` detects it from the weights.",
        choices=("auto", "sd1", "sd2", "sd2-v", "sdxl"))
    prediction: Literal["auto", "epsilon", "v_prediction"] = _f(
        "auto", "What the UNet predicts; `auto` takes it from the model's scheduler config.",
        choices=("auto", "epsilon", "v_prediction"))
    clip_skip: int = _f(1, "Use the text encoder's N-th last layer (2 is common for anime models).", lo=1, hi=4)


@dataclass(frozen=True)
class NetworkConfig:
    rank: int = _f(16, "LoRA rank (network dim): capacity of the adapter. 8-32 is typical.", lo=1, hi=1024)
    alpha: float = _f(8.0, "LoRA alpha: the update is scaled by alpha / rank.", lo=0.0, hi=4096.0)
    dropout: float = _f(0.0, "Dropout on the LoRA path during training.", lo=0.0, hi=0.9)
    targets: Literal["transformer", "attention"] = _f(
        "transformer", "Which UNet layers get LoRA: every linear and 1x1 conv in the transformer blocks "
                       "(kohya's default) or the attention projections only (lighter).",
        choices=("transformer", "attention"))
    train_text_encoder: bool = _f(False, "Also train LoRA on the text encoder(s).")


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adamw"] = _f("adamw", "Optimizer.", choices=("adamw",))
    unet_lr: float = _f(1e-4, "Learning rate for the UNet LoRA.", lo=0.0, hi=1.0)
    text_encoder_lr: float = _f(5e-5, "Learning rate for the text-encoder LoRA.", lo=0.0, hi=1.0)
    weight_decay: float = _f(1e-2, "AdamW weight decay.", lo=0.0, hi=1.0)
    betas: tuple[float, float] = _f((0.9, 0.999), "AdamW betas.")
    eps: float = _f(1e-8, "AdamW epsilon.", lo=0.0, hi=1.0, advanced=True)
    max_grad_norm: float = _f(1.0, "Clip the gradient norm to this value (0 disables clipping).", lo=0.0, hi=1e6)


@dataclass(frozen=True)
class ScheduleConfig:
    max_steps: int = _f(1000, "Optimizer steps to train.", lo=1, hi=10_000_000)
    batch_size: int = _f(1, "Images per step on each device.", lo=1, hi=256)
    gradient_accumulation: int = _f(1, "Accumulate gradients over N batches per optimizer step.", lo=1, hi=256)
    lr_scheduler: Literal["constant", "linear", "cosine"] = _f(
        "constant", "Learning-rate schedule after warm-up.", choices=("constant", "linear", "cosine"))
    warmup_steps: int = _f(0, "Steps of linear learning-rate warm-up.", lo=0, hi=10_000_000)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = _f(
        "auto", "Mixed precision on CUDA (`auto`: bf16 where supported, else fp16; always fp32 on CPU).",
        choices=("auto", "no", "fp16", "bf16"))
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: much less VRAM, "
                                             "about 20-30% slower.")
    seed: int = _f(42, "Random seed; the same seed gives the same run on the same hardware.", lo=0, hi=2**32 - 1)


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


@dataclass(frozen=True)
class OutputConfig:
    name: str = _f("lora", "Name of the exported LoRA file (without extension); also its alias in the WebUI.")
    directory: str = _f("output", "Where exported LoRAs are written (relative to the project file).")
    save_every_n_steps: int = _f(0, "Save a resumable checkpoint and an export every N steps (0: only at the end).",
                                 lo=0, hi=10_000_000)
    keep_checkpoints: int = _f(3, "Keep only the newest N resumable checkpoints.", lo=1, hi=1000)
    dtype: Literal["fp16", "bf16", "fp32"] = _f("fp16", "Precision of the exported weights.",
                                                choices=("fp16", "bf16", "fp32"))
    trigger_phrase: str = _f("", "Trigger word(s) written into the file's metadata.")


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


# --------------------------------------------------------------------------------------------------
# Conversion between TOML values and typed fields


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise TypeError/ValueError with what was expected."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(_describe(tp))
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(_describe(tp))
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if len(value) != len(args):
            raise ValueError(_describe(tp))
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(_describe(tp))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(_describe(tp))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(_describe(tp))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(_describe(tp))
        return value
    raise TypeError(f"unsupported field type {tp!r}")  # pragma: no cover - a programming error


def field_help(section: str, name: str) -> dict[str, Any]:
    """The metadata of one field (help, min, max, choices, advanced): used by the CLI and the GUI."""
    for f in fields(section_type(section)):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(f"{section}.{name}")


def _check_range(where: str, value: Any, meta: dict[str, Any]) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise ConfigError(f"{where} is {value}, expected a value between {lo} and {hi}")


def build_section(section: str, values: dict[str, Any], base: Any, source: str) -> Any:
    """Apply `values` (from TOML, a preset or CLI flags) onto the dataclass instance `base`."""
    cls = type(base)
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}: [{section}] {key}"
        if key not in known:
            close = _closest(key, known)
            hint = f" (did you mean `{close}`?)" if close else ""
            raise ConfigError(f"{source}: unknown key `{key}` in [{section}]{hint}; "
                              f"known keys: {', '.join(sorted(known))}")
        try:
            coerced = _coerce(value, hints[key])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} is {value!r}, expected {exc}") from None
        _check_range(where, coerced, dict(known[key].metadata))
        changes[key] = coerced
    return replace(base, **changes)


def _closest(key: str, known: dict[str, Any]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def apply_mapping(cfg: ProjectConfig, data: dict[str, Any], source: str) -> ProjectConfig:
    """Overlay a nested mapping `{section: {key: value}}` onto `cfg`, strictly."""
    for section, values in data.items():
        if section in ("format_version", "preset"):
            continue
        if section not in SECTIONS:
            close = _closest(section, dict.fromkeys(SECTIONS))
            hint = f" (did you mean [{close}]?)" if close else ""
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
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML must be UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def load_preset(name: str, base: ProjectConfig | None = None) -> ProjectConfig:
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset `{name}`; available: {', '.join(preset_names())}")
    return apply_mapping(base or ProjectConfig(), _read_toml(path), str(path))


def load_project(path: str | Path) -> ProjectConfig:
    """Read a project file: defaults, then its `preset = "…"` if any, then its own sections."""
    path = Path(path)
    data = _read_toml(path)
    version = data.get("format_version", PROJECT_FORMAT_VERSION)
    if not isinstance(version, int) or version > PROJECT_FORMAT_VERSION:
        raise ConfigError(f"{path}: written by a newer LoRA Studio (format_version {version}, "
                          f"this version reads up to {PROJECT_FORMAT_VERSION}); update LoRA Studio")
    cfg = ProjectConfig()
    preset = data.get("preset")
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"{path}: `preset` must be a string naming a preset")
        cfg = load_preset(preset, cfg)
    return apply_mapping(cfg, data, str(path))


def to_mapping(cfg: ProjectConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"format_version": PROJECT_FORMAT_VERSION}
    for section in SECTIONS:
        values = dataclasses.asdict(getattr(cfg, section))
        out[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return out


def dumps_project(cfg: ProjectConfig) -> str:
    return tomli_w.dumps(to_mapping(cfg))


def save_project(cfg: ProjectConfig, path: str | Path) -> None:
    """Write atomically; the previous version is kept as `<name>.bak` so a bad save can be undone."""
    path = Path(path)
    if path.exists():
        backup = path.with_suffix(path.suffix + ".bak")
        atomic_write_bytes(backup, path.read_bytes())
    atomic_write_bytes(path, dumps_project(cfg).encode("utf-8"))


def resolve_path(project_file: str | Path | None, value: str) -> Path:
    """Paths in a project file are relative to the file's folder."""
    p = Path(value).expanduser()
    if p.is_absolute() or project_file is None:
        return p
    return Path(project_file).resolve().parent / p

