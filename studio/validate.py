"""Every rule a whole configuration must meet before it trains, in one place, each naming the field to fix.

`validate(cfg)` holds the rules between fields and reads nothing from disk, so the form runs it as the user
types; `check_files(cfg, project_file)` is the one disk check, run off the GUI thread. `lora-studio train`,
the worker and the form call both, so each refuses the same configs in the same words. (Per-field type and
range errors come earlier, from `config.build_section`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from studio.config import ProjectConfig, file_name_problem_of, resolve_path
from studio.errors import ConfigError, Problem, StudioError
from studio.run_folder import check_writable_folder

LYCORIS = ("loha", "lokr")
#: the smallest preview side: below it the UNet's downsampling leaves fewer latent pixels than GroupNorm needs
MIN_PREVIEW_SIDE = 64


def validate(cfg: ProjectConfig) -> list[Problem]:
    """The problems between fields of `cfg` (no disk access), errors first in form order, then warnings."""
    problems = [*_required(cfg), *_network(cfg), *_values(cfg), *_sizes(cfg), *_warnings(cfg)]
    problems.sort(key=lambda p: p.severity != "error")  # stable: errors first, each group in form order
    found = file_name_problem_of("output", "name", cfg.output.name)  # configs made in code skip build_section
    if found is not None:
        problems.insert(0, found)
    return problems


def _required(cfg: ProjectConfig) -> Iterator[Problem]:
    """No hint: where to set a field is each surface's to say (the form highlights it, the CLI names the flag)."""
    if not cfg.model.path.strip():
        yield Problem("model", "path", "choose a base model: a diffusers folder or a .safetensors / .ckpt "
                                       "checkpoint")
    if not cfg.dataset.folders:
        yield Problem("dataset", "folders", "add a folder of training images")


def _network(cfg: ProjectConfig) -> Iterator[Problem]:
    """Combinations that peft or the export cannot honour."""
    net = cfg.network
    if net.type in LYCORIS:
        for on, key, name in ((net.dora, "dora", "dora"), (net.rslora, "rslora", "rslora"),
                              (net.init != "default", "init", "init = pissa"), (net.dropout > 0, "dropout", "dropout")):
            if on:
                yield Problem("network", key, f"[network] {name} works with the lora and locon types, not "
                                              f"{net.type}", hint=f"turn {key} off, or choose type lora or locon")
    if net.init == "pissa" and net.dora:
        yield Problem("network", "init", "[network] PiSSA initialisation and DoRA cannot be combined",
                      hint="choose one of them")


def _values(cfg: ProjectConfig) -> Iterator[Problem]:
    """Values each allowed on its own that together cannot train."""
    if cfg.network.alpha == 0:
        yield Problem("network", "alpha", "alpha 0 scales the LoRA to nothing: the result would have no effect",
                      hint="set alpha to about half the rank")
    opt = cfg.optimizer
    if opt.unet_lr == 0 and (not cfg.network.train_text_encoder or opt.text_encoder_lr == 0):
        # a warning: a run at 0 is how one measures the base model's validation loss
        yield Problem("optimizer", "unet_lr", "a learning rate of 0 trains nothing",
                      hint="1e-4 is a usual UNet learning rate", severity="warning")
    sched = cfg.schedule
    if sched.warmup_steps > sched.max_steps:
        yield Problem("schedule", "warmup_steps", f"warm-up ({sched.warmup_steps} steps) is longer than the "
                                                  f"run ({sched.max_steps} steps)",
                      hint=f"set warm-up steps below {sched.max_steps}")


def _sizes(cfg: ProjectConfig) -> Iterator[Problem]:
    res = cfg.dataset.resolution
    if res % 8:
        yield Problem("dataset", "resolution", f"{res} is not a multiple of 8 (the VAE needs one)",
                      hint=f"set the resolution to {max(64, res // 8 * 8)}")
    for key in ("width", "height"):
        side = getattr(cfg.sampling, key)  # 0 is the training resolution, checked above
        if side and (side < MIN_PREVIEW_SIDE or side % 8):
            yield Problem("sampling", key, f"[sampling] {key} is {side} px; previews need a multiple of 8 of "
                                           f"at least {MIN_PREVIEW_SIDE} px",
                          hint=f"set [sampling] {key} to e.g. {max(MIN_PREVIEW_SIDE, side // 8 * 8)}")


def _warnings(cfg: ProjectConfig) -> Iterator[Problem]:
    if cfg.sampling.every_n_steps and not [p for p in cfg.sampling.prompts if p.strip()]:
        yield Problem("sampling", "prompts", "previews are on (every N steps) but there is no prompt",
                      hint="add a preview prompt, or set Preview every N steps to 0", severity="warning")
    if cfg.output.save_every_n_steps > cfg.schedule.max_steps:
        yield Problem("output", "save_every_n_steps", "no checkpoint will be saved before the end of the run",
                      hint=f"set Save every N steps below {cfg.schedule.max_steps}", severity="warning")


# --------------------------------------------------------------------------------------------------
# The disk


def check_files(cfg: ProjectConfig, project_file: str | Path | None) -> list[Problem]:
    """What the base model, the image folders and the output folder named by `cfg` would make the run refuse;
    it reads the model's header (and a `.ckpt`'s pickle)."""
    return [*_model_files(cfg, project_file), *_image_folders(cfg, project_file),
            *_output_folder(cfg, project_file)]


def _model_files(cfg: ProjectConfig, project_file: str | Path | None) -> list[Problem]:
    if not cfg.model.path.strip():
        return []  # validate() says so
    model = resolve_path(project_file, cfg.model.path)
    # the loader's first look (a missing or damaged folder, a FIFO) and then the one rule of which files are
    # models and how they read, the loader's and the model picker's own: the same words everywhere
    from studio.models.detect import detect_model
    from studio.models.entry_check import check_model_path

    try:
        check_model_path(model)
        detect_model(model, family=cfg.model.family, prediction=cfg.model.prediction, ema=cfg.model.ema)
    except StudioError as exc:
        text = str(exc)
        key = "ema" if "EMA" in text else "family" if "family was set" in text else "path"
        return [Problem("model", key, text, hint=exc.hint)]
    except OSError as exc:
        return [Problem("model", "path", f"cannot read {model.name}: {exc.strerror or exc}")]
    return []


def _image_folders(cfg: ProjectConfig, project_file: str | Path | None) -> Iterator[Problem]:
    from studio.dataset.scan import scan_folders

    ds = cfg.dataset
    for key, values in (("folders", ds.folders), ("regularization_folders", ds.regularization_folders)):
        folders = [resolve_path(project_file, f) for f in values]
        missing = [f"{f}: folder not found" for f in folders if not f.is_dir()]
        if missing:
            yield Problem("dataset", key, "; ".join(missing), hint="check the path, or remove it from the list")
        elif folders:
            scan = scan_folders(folders, caption_extension=ds.caption_extension,
                                default_caption=ds.default_caption, default_repeats=ds.repeats)
            if not scan.images:
                yield Problem("dataset", key, no_images_message(folders), hint=NO_IMAGES_HINT)
    missing = [v for v in cfg.sampling.validation_images if not resolve_path(project_file, v).exists()]
    if missing:
        yield Problem("sampling", "validation_images", "not found: " + ", ".join(missing),
                      hint="check the path, or remove it from the list")


NO_IMAGES_HINT = "add .png/.jpg/.webp images (captions go in .txt files beside them)"


def no_images_message(folders: list[Path]) -> str:
    """The words for folders that hold no image (the engine's dataset loader says the same)."""
    return f"no images found in {', '.join(str(f) for f in folders)}"


def _output_folder(cfg: ProjectConfig, project_file: str | Path | None) -> list[Problem]:
    try:
        check_writable_folder(resolve_path(project_file, cfg.output.directory), "[output] directory")
    except ConfigError as exc:
        return [Problem("output", "directory", str(exc), hint=exc.hint)]
    return []


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def require_valid(cfg: ProjectConfig, project_file: str | Path | None = None, *, files: bool = True,
                  source: str = "") -> list[Problem]:
    """Raise one ConfigError listing every error (`validate`, then `check_files` unless `files` is False);
    return the warnings. The CLI and the worker call this before they load anything."""
    problems = validate(cfg) + (check_files(cfg, project_file) if files else [])
    if errors := errors_of(problems):
        raise ConfigError.from_problems(errors, source)
    return [p for p in problems if p.severity == "warning"]


__all__ = ["MIN_PREVIEW_SIDE", "Problem", "check_files", "errors_of", "require_valid", "validate"]
