"""Checks before a run starts, each naming the field to fix, so the form can highlight it.

The engine checks the same things and fails cleanly, but only after the worker has loaded the model;
catching them here means the user sees the red field at once, before pressing Start does anything.
This touches the disk (model path, dataset folders), so the window runs it off the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.config import ProjectConfig, resolve_path
from studio.dataset.scan import scan_folders
from studio.safe_names import file_name_problem


@dataclass(frozen=True)
class Problem:
    section: str
    field: str
    message: str
    severity: str = "error"  # "error" blocks the start; "warning" is shown and the run may go ahead


def model_problems(cfg: ProjectConfig, model: Path) -> list[tuple[str, str]]:
    """What the loader would refuse about the base model, in its own words, found by the same check the
    loader and the model picker run (`detect_model`): weights-only `.ckpt` files pass, damaged ones, LoRAs,
    refiners, inpainting and SD3/Flux checkpoints do not, and neither do settings the weights contradict."""
    from studio.errors import StudioError
    from studio.models.describe import problem_text
    from studio.models.detect import detect_model

    try:
        detect_model(model, family=cfg.model.family, prediction=cfg.model.prediction, ema=cfg.model.ema)
    except StudioError as exc:
        text = problem_text(exc)
        field_name = "ema" if "EMA" in str(exc) else "family" if "family was set" in str(exc) else "path"
        return [(field_name, text)]
    except OSError as exc:
        return [("path", f"cannot read {model.name}: {exc.strerror or exc}")]
    return []


def preflight(cfg: ProjectConfig, project_file: str | Path | None) -> list[Problem]:
    problems: list[Problem] = []
    add = lambda section, name, message, severity="error": problems.append(  # noqa: E731
        Problem(section, name, message, severity))

    # model
    if not cfg.model.path.strip():
        add("model", "path", "choose a base model: a diffusers folder or a .safetensors / .ckpt checkpoint")
    else:
        model = resolve_path(project_file, cfg.model.path)
        if not model.exists():
            add("model", "path", f"the base model {model} does not exist")
        else:
            for field_name, message in model_problems(cfg, model):
                add("model", field_name, message)

    # dataset
    if not cfg.dataset.folders:
        add("dataset", "folders", "add a folder of training images")
    else:
        folders = [resolve_path(project_file, f) for f in cfg.dataset.folders]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            add("dataset", "folders", "folder not found: " + ", ".join(missing))
        else:
            scan = scan_folders(folders, caption_extension=cfg.dataset.caption_extension,
                                default_caption=cfg.dataset.default_caption, default_repeats=cfg.dataset.repeats)
            if not scan.images:
                add("dataset", "folders", "the dataset folders hold no images (.png, .jpg, .webp)")
    if cfg.dataset.resolution % 8:
        add("dataset", "resolution", f"{cfg.dataset.resolution} is not a multiple of 8 (the VAE needs one)")

    # values that cannot train
    if cfg.network.alpha == 0:
        add("network", "alpha", "alpha 0 scales the LoRA to nothing: the result would have no effect")
    if cfg.optimizer.unet_lr == 0 and (not cfg.network.train_text_encoder or cfg.optimizer.text_encoder_lr == 0):
        add("optimizer", "unet_lr", "a learning rate of 0 trains nothing")
    if cfg.schedule.warmup_steps > cfg.schedule.max_steps:
        add("schedule", "warmup_steps", f"warm-up ({cfg.schedule.warmup_steps} steps) is longer than the run "
                                        f"({cfg.schedule.max_steps} steps)")
    for name in ("width", "height"):
        value = getattr(cfg.sampling, name)
        if value % 8:
            add("sampling", name, f"{value} is not a multiple of 8")
    if cfg.sampling.every_n_steps and not [p for p in cfg.sampling.prompts if p.strip()]:
        add("sampling", "prompts", "previews are on (every N steps) but there is no prompt", "warning")
    name_problem = file_name_problem(cfg.output.name)
    if name_problem is not None:
        add("output", "name", f"this cannot be a file name: {name_problem}")
    if cfg.output.save_every_n_steps > cfg.schedule.max_steps:
        add("output", "save_every_n_steps", "no checkpoint will be saved before the end of the run", "warning")
    return problems
