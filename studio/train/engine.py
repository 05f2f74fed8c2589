"""The training engine: a generator of events. The CLI, the worker process and the tests just iterate it.

Each `yield` is a progress report and a safe point to pause, stop, save or sample (napari's generator
jobs), so no thread ever has to be killed. Everything the user might want back after a crash is written
into the run folder as it happens. This module only orders the stages; each lives in its own module.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.config import ProjectConfig, resolve_path
from studio.errors import ConfigError, StudioError
from studio.events import (Checkpoint, Event, Failed, Finished, Log, Progress, Sample, Started, StateChanged,
                           Validation)
from studio.formats.metadata import TrainingFacts, training_metadata
from studio.libraries import quiet_libraries
from studio.models.load import Components, load_components
from studio.train import checkpoint as ckpt
from studio.train import distributed
from studio.train.conditioning import TextConditioner, sdxl_time_ids
from studio.train.control import TrainControl
from studio.train.batches import Batch, batch_rng, batches, collate, steps_per_epoch
from studio.train.buckets import bucket_spec
from studio.train.data import PreparedDataset, collect_images, collect_regularization, prepare_dataset
from studio.train.ema import LoraEMA
from studio.train.export import adapter_state_dicts, export_lora, load_adapter_state_dicts
from studio.train.grids import write_grid
from studio.train.latent_cache import CACHE_DIR, LatentCache, vae_fingerprint
from studio.train.networks import add_adapters, network_metadata
from studio.train.noise import training_scheduler
from studio.train.objective import Objective, diffusion_loss
from studio.train.optimizers import evaluation_weights, is_schedule_free, make_optimizer, trainable_parameters
from studio.run_folder import EventLog, check_writable_folder, checkpoint_dir, new_run_dir, write_config_snapshot
from studio.train.sampling import render_samples
from studio.validate import require_valid
from studio.train.schedules import make_lr_scheduler, warmup_steps
from studio.train.setup import choose_precision, place_models
from studio.train.speed import apply_speed_options, ensure_sdpa, use_channels_last
from studio.train.tensorboard import EventWriter
from studio.train.validation import ValidationTrend, split_validation, validation_loss

OOM_HINT = ("the GPU ran out of memory: turn on gradient checkpointing, lower the batch size or the resolution, "
            "or use a low-VRAM preset")


@dataclass
class Run:
    """What the loop carries between steps; built once by `_setup`."""

    cfg: ProjectConfig
    components: Components
    accelerator: object
    unet: torch.nn.Module
    trained_tes: list
    conditioner: TextConditioner
    dataset: PreparedDataset
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    noise_gen: torch.Generator
    run_dir: Path
    output_dir: Path
    weight_dtype: torch.dtype
    mixed: str
    started_at: float
    scheduler: object  # the noise schedule trained with (zero-terminal-SNR rescaled, if asked)
    objective: Objective
    params: list  # the trainable parameters, in a fixed order
    ema: LoraEMA | None = None
    initial: dict | None = None  # PiSSA: the adapter's starting weights (part of the base)
    tensorboard: EventWriter | None = None
    trend: ValidationTrend = field(default_factory=ValidationTrend)
    step: int = 0
    epoch: int = 0
    index: int = 0
    outputs: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        return self.components.family

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def run_training(cfg: ProjectConfig, *, project_file: str | Path | None = None,
                 control: TrainControl | None = None, resume_from: str | Path | None = None,
                 run_dir: str | Path | None = None) -> Iterator[Event]:
    """Train, yielding events; ends with exactly one Finished or Failed event. Bad input (StudioError) is
    reported as Failed, never raised; nothing is written before the dataset and the model are checked."""
    control = control or TrainControl()
    log: EventLog | None = None
    try:
        for event in _train(cfg, project_file, control, resume_from, run_dir):
            if isinstance(event, Started) and distributed.process_state().is_main_process:
                log = EventLog(Path(event.run_dir) / "events.jsonl")
            if log:
                log.write(event)
            yield event
        return
    except StudioError as exc:
        failed = Failed(error=str(exc), hint=exc.hint)
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - needs a GPU
        failed = Failed(error=f"out of GPU memory ({exc})", hint=OOM_HINT, traceback=traceback.format_exc())
    except Exception as exc:
        failed = Failed(error=f"{type(exc).__name__}: {exc}", hint="this is a bug in LoRA Studio; the log has details",
                        traceback=traceback.format_exc())
    finally:
        if log:
            log.close()
    if log:
        EventLog(log.path).write(failed)
    yield failed


def _train(cfg: ProjectConfig, project_file, control: TrainControl, resume_from, run_dir) -> Iterator[Event]:
    resolve = lambda p: resolve_path(project_file, p)  # noqa: E731
    # the rules between fields, before anything is read: a config made in code meets the checks a project file,
    # the CLI and the form meet (the disk checks follow, each where its files are read)
    require_valid(cfg, project_file, files=False)
    quiet_libraries()
    ds = cfg.dataset
    project_dir = Path(project_file).resolve().parent if project_file else None
    records, folder_problems = collect_images(ds, resolve, project_dir)
    reg_records = collect_regularization(ds, resolve)
    records, val_records = split_validation(records, cfg.sampling, resolve, seed=cfg.schedule.seed,
                                            caption_extension=ds.caption_extension,
                                            default_caption=ds.default_caption)
    position = ckpt.read_position(Path(resume_from)) if resume_from else None
    project_root = Path(project_file).resolve().parent if project_file else resolve(cfg.output.directory)
    check_writable_folder(resolve(cfg.output.directory), "[output] directory")
    if not resume_from and not run_dir:
        check_writable_folder(project_root / "runs", "the runs folder")
    components = load_components(resolve(cfg.model.path), family=cfg.model.family, prediction=cfg.model.prediction,
                                 ema=cfg.model.ema)
    if position:
        _check_resumable(position, cfg, components.family)
    scheduler = training_scheduler(components.scheduler, zero_terminal_snr=cfg.schedule.zero_terminal_snr,
                                   prediction=components.prediction)
    components.scheduler = scheduler  # previews sample with the schedule the LoRA is trained on
    state = distributed.process_state()

    def make_run_dir() -> Path:
        if run_dir:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            return Path(run_dir)
        if resume_from:
            return Path(resume_from).resolve().parent.parent
        return new_run_dir(project_root / "runs", cfg.output.name)

    the_run_dir = distributed.shared_path(state, make_run_dir)

    def started() -> Iterator[Event]:
        if state.is_main_process:
            write_config_snapshot(the_run_dir, cfg)
        yield Started(run_dir=str(the_run_dir), total_steps=cfg.schedule.max_steps,
                      start_step=position.step if position else 0, num_images=len(records), device=_device_name())
        yield from (Log(level="warning", text=message) for message in folder_problems)

    # a resume is checked to the end (weights, optimizer, every state file) before anything is written into the
    # run: a refused resume must leave the run's config.toml and event log as they were, since the refusal's
    # hint sends the user to that config.toml
    if not position:
        yield from started()
    notes: list[str] = []
    run = _setup(cfg, components, scheduler, (records, reg_records, val_records), the_run_dir,
                 resolve(cfg.output.directory), project_root / CACHE_DIR, position, resume_from, notes.append)
    if position:
        yield from started()
    if cfg.output.tensorboard and run.main:
        run.tensorboard = EventWriter(the_run_dir)
    yield from (Log(level="warning", text=f"skipped {message}") for message in run.dataset.skipped)
    yield from (Log(level="info" if note.startswith("speed:") else "warning", text=note) for note in notes)
    ds_info = run.dataset
    extra = f", {ds_info.num_reg_images} regularisation" if ds_info.num_reg_images else ""
    extra += f", {len(ds_info.validation)} for validation" if ds_info.validation else ""
    extra += f", {len(ds_info.bucket_counts())} buckets" if cfg.dataset.bucketing else ""
    if ds_info.cache_hits or ds_info.cache_misses:
        extra += f", latents: {ds_info.cache_hits} from the disk cache, {ds_info.cache_misses} encoded"
    world = run.accelerator.num_processes
    where = _device_name() + (f" × {world} processes" if world > 1 else "")
    yield Log(level="info", text=f"{ds_info.num_train_images} images{extra}, {ds_info.epoch_length} per epoch "
                                 f"with repeats, {components.family} model, training on {where}")
    yield StateChanged(state="running")
    try:
        yield from _loop(run, control)
    finally:
        if run.tensorboard:
            run.tensorboard.close()


def _device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _check_resumable(position: ckpt.LoopPosition, cfg: ProjectConfig, family: str) -> None:
    if position.family != family:
        raise ConfigError(f"this checkpoint was trained on a {position.family} model and the chosen base model is "
                          f"{family}; a LoRA cannot continue on another model family",
                          hint="choose the base model the run was started with, or start a new run")
    net = cfg.network
    if (position.rank != net.rank or position.train_text_encoder != net.train_text_encoder
            or position.network != net.type):
        raise ConfigError(f"the checkpoint has a rank {position.rank} {position.network} (text encoder trained: "
                          f"{position.train_text_encoder}); the settings ask for a rank {net.rank} {net.type} "
                          f"(text encoder: {net.train_text_encoder})",
                          hint="resume with the settings of the original run (its config.toml)")
    if position.optimizer and position.optimizer != cfg.optimizer.name:
        raise ConfigError(f"the checkpoint was trained with the {position.optimizer} optimizer and the settings ask "
                          f"for {cfg.optimizer.name}; an optimizer's saved state cannot continue in another one",
                          hint=f"resume with [optimizer] name = \"{position.optimizer}\" (the original run's "
                               "config.toml), or start a new run")


def _setup(cfg: ProjectConfig, components: Components, scheduler, record_sets, run_dir: Path, output_dir: Path,
           cache_dir: Path, position: ckpt.LoopPosition | None, resume_from, note) -> Run:
    from accelerate import Accelerator

    sched = cfg.schedule
    probe = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    precision = choose_precision(sched.mixed_precision, probe)
    accelerator = Accelerator(mixed_precision=precision.mixed, gradient_accumulation_steps=sched.gradient_accumulation,
                              cpu=not torch.cuda.is_available())
    device = accelerator.device
    torch.manual_seed(sched.seed)

    place_models(components, precision, device, base_quantization=cfg.network.base_quantization)
    unet, tes = components.unet, list(components.text_encoders)
    trained = add_adapters(unet, tes, cfg.network, train_text_encoder=cfg.network.train_text_encoder, seed=sched.seed)
    initial = None
    if cfg.network.init == "pissa":
        initial = {k: {n: t.detach().clone() for n, t in sd.items()}
                   for k, sd in adapter_state_dicts(unet, trained[1:], components.family).items()}
    for module in trained:
        module.train()
    if sched.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        for te in trained[1:]:
            te.gradient_checkpointing_enable()
    before = ensure_sdpa(unet)
    done = apply_speed_options(unet, channels_last=use_channels_last(sched.channels_last, device),
                               compile_unet=sched.compile_unet)
    note(f"speed: attention {before or 'none'} → SDPA" + "".join(f", {d}" for d in done))

    records, reg_records, val_records = record_sets
    vae_dtype = torch.float32 if components.is_sdxl else precision.weights
    cache = LatentCache(cache_dir) if cfg.dataset.latent_cache == "disk" else None
    dataset = prepare_dataset(records, cfg.dataset, components.vae, device=device, dtype=vae_dtype, seed=sched.seed,
                              reg_records=reg_records, validation_records=val_records, cache=cache,
                              vae_hash=vae_fingerprint(components.vae) if cache else "")
    if cache is not None and cache.problem:
        note(cache.problem)
    warmup = warmup_steps(sched)
    optimizer = make_optimizer(trained, cfg.optimizer, fused=device.type == "cuda", warmup_steps=warmup, warn=note)
    schedule_free = is_schedule_free(optimizer)
    if schedule_free and sched.lr_scheduler != "constant":
        note(f"schedule-free AdamW makes its own schedule: the `{sched.lr_scheduler}` schedule is not used")
    lr_scheduler = make_lr_scheduler(optimizer, sched, accelerator.num_processes, schedule_free=schedule_free)
    params = [p for m in trained for p in trainable_parameters(m)]
    prepared = accelerator.prepare(*trained, optimizer, lr_scheduler)
    trained, optimizer, lr_scheduler = list(prepared[:-2]), prepared[-2], prepared[-1]
    noise_gen = torch.Generator(device="cpu").manual_seed(sched.seed + accelerator.process_index)
    augmented = any(f.shuffle_captions or f.tag_dropout > 0 for f in dataset.folders)
    conditioner = TextConditioner(components, clip_skip=cfg.model.clip_skip, device=device,
                                  cache=not cfg.network.train_text_encoder and not augmented)
    run = Run(cfg=cfg, components=components, accelerator=accelerator, unet=trained[0], trained_tes=trained[1:],
              conditioner=conditioner, dataset=dataset, optimizer=optimizer, lr_scheduler=lr_scheduler,
              noise_gen=noise_gen, run_dir=run_dir, output_dir=output_dir, weight_dtype=precision.weights,
              mixed=precision.mixed, started_at=time.time(), scheduler=scheduler,
              objective=Objective.from_config(cfg, components.prediction), params=params, initial=initial,
              ema=LoraEMA(params, cfg.optimizer.ema_decay) if cfg.optimizer.ema_decay > 0 else None)
    if position and resume_from:
        path = Path(resume_from)
        load_adapter_state_dicts(run.unet, run.trained_tes, run.family, ckpt.load_adapters(path))
        ckpt.restore_training_state(path, optimizer=optimizer, lr_scheduler=lr_scheduler, noise_gen=noise_gen,
                                    optimizer_recorded=bool(position.optimizer))
        extra = ckpt.load_extra(path)
        if run.ema is not None and "ema" in extra:
            run.ema.load_state_dict(extra["ema"])
        if run.initial is not None:
            run.initial = {k.removeprefix("initial_"): v for k, v in extra.items() if k.startswith("initial_")}
        run.step, run.epoch, run.index = position.step, position.epoch, position.index
    return run


def _batch_loss(run: Run, batch: Batch, *, timesteps: torch.Tensor | None = None,
                noise: torch.Tensor | None = None, augment: bool = True, unet=None) -> torch.Tensor:
    """The objective on one batch: conditioning (text, and SDXL's size/crop ids) around `diffusion_loss`."""
    comp, device, dtype = run.components, run.accelerator.device, run.weight_dtype
    latents = batch.latents.to(device, dtype=dtype)
    hidden, pooled = run.conditioner(batch.captions)
    kwargs = {"encoder_hidden_states": hidden.to(dtype)}
    if comp.is_sdxl:
        time_ids = sdxl_time_ids(batch.original_sizes, batch.crops, batch.target_size)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(dtype), "time_ids": time_ids.to(device, dtype)}
    model = unet or run.unet

    def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with run.accelerator.autocast():
            return model(noisy, t, **kwargs).sample

    return diffusion_loss(predict, latents, run.scheduler, run.objective, run.noise_gen, weights=batch.weights,
                          masks=batch.masks, augment=augment,
                          timesteps=None if timesteps is None else timesteps.to(device),
                          noise=None if noise is None else noise.to(device, dtype))


def _loop(run: Run, control: TrainControl) -> Iterator[Event]:
    cfg, acc = run.cfg, run.accelerator
    sched, out, sam = cfg.schedule, cfg.output, cfg.sampling
    world, rank = acc.num_processes, acc.process_index
    data = batches(run.dataset, sched.batch_size * world, sched.seed, start_epoch=run.epoch, start_index=run.index)
    smoothed: float | None = None
    rate: float | None = None
    last_saved = run.step
    total = sched.max_steps

    def due(every: int) -> bool:  # every n steps, short of the end (which always saves, validates, samples)
        return bool(every) and run.step % every == 0 and run.step < total

    while run.step < total:
        if control.paused:
            yield StateChanged(state="paused")
            while control.paused and not control.stop_requested:
                control.wait_while_paused(0.2)
            yield StateChanged(state="running")
        if control.stop_requested:
            yield StateChanged(state="stopping")
            if run.step > last_saved:
                yield from _save(run, final=False)
            yield Finished(outputs=tuple(run.outputs), step=run.step, stopped=True)
            return
        t0 = time.perf_counter()
        loss_sum = 0.0
        for _ in range(sched.gradient_accumulation):
            run.epoch, run.index, chunk = next(data)
            batch = collate(run.dataset, chunk[rank::world] or chunk[:1],
                            batch_rng(sched.seed, run.epoch, run.index, rank))
            with acc.accumulate(run.unet, *run.trained_tes):
                loss = _batch_loss(run, batch)
                acc.backward(loss)
                if acc.sync_gradients and cfg.optimizer.max_grad_norm > 0:
                    acc.clip_grad_norm_(run.params, cfg.optimizer.max_grad_norm)
                run.optimizer.step()
                run.lr_scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach().item()
        run.step += 1
        if run.ema is not None:
            run.ema.update()
        value = loss_sum / sched.gradient_accumulation
        if not math.isfinite(value):
            raise StudioError(f"the loss became {value} at step {run.step}",
                              hint="lower the learning rate, or use bf16/fp32 instead of fp16")
        smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
        dt = max(time.perf_counter() - t0, 1e-9)
        rate = 1.0 / dt if rate is None else 0.8 * rate + 0.2 / dt
        mem = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        lr = float(run.lr_scheduler.get_last_lr()[0])
        yield Progress(step=run.step, total=total, epoch=run.epoch + 1, loss=value, smoothed_loss=smoothed, lr=lr,
                       it_per_s=rate, eta_s=(total - run.step) / rate, gpu_mem_mb=mem)
        if run.tensorboard:
            run.tensorboard.scalars(run.step, {"loss/train": value, "loss/train_smoothed": smoothed, "lr/unet": lr})
        saved = due(out.save_every_n_steps) or control.take_save()
        if saved:
            yield from _save(run, final=False)
            last_saved = run.step
        if run.dataset.validation and due(sam.validation_every_n_steps):
            yield from _validate(run)
        if sam.prompts and (due(sam.every_n_steps) or (sam.on_save and saved) or control.take_sample()):
            yield from _sample(run)
    yield from _save(run, final=True)
    if run.dataset.validation:
        yield from _validate(run)
    if sam.prompts:
        yield from _sample(run)
    yield Finished(outputs=tuple(run.outputs), step=run.step)


@contextlib.contextmanager
def _evaluation(run: Run) -> Iterator[None]:
    """The weights to export, preview and validate: schedule-free's average, or the EMA, in eval mode."""
    modules = [run.unet, *run.trained_tes]
    was_training = [m.training for m in modules]
    with (evaluation_weights(run.optimizer, run.params),
          run.ema.applied() if run.ema is not None else contextlib.nullcontext()):
        for m in modules:
            m.eval()
        try:
            yield
        finally:
            for m, flag in zip(modules, was_training):
                m.train(flag)


def _facts(run: Run) -> TrainingFacts:
    per_epoch = steps_per_epoch(run.dataset, run.cfg.schedule.batch_size * run.accelerator.num_processes,
                                run.cfg.schedule.gradient_accumulation)
    module, args, dim, alpha = network_metadata(run.cfg.network)
    spec = bucket_spec(run.cfg.dataset) if run.cfg.dataset.bucketing else None
    return TrainingFacts(family=run.family, prediction=run.components.prediction,
                         model_name=run.components.source.name, num_images=run.dataset.epoch_length,
                         steps=run.step, epoch=max(1, math.ceil(run.step / per_epoch)), started_at=run.started_at,
                         finished_at=time.time(), mixed_precision=run.mixed,
                         tag_frequency=run.dataset.tag_frequency, dataset_dirs=run.dataset.dataset_dirs,
                         num_reg_images=run.dataset.num_reg_images, buckets=run.dataset.bucket_counts(),
                         network_module=module, network_args=args, network_dim=dim, network_alpha=alpha,
                         warmup_steps=warmup_steps(run.cfg.schedule),
                         bucket_reso=(spec.min_side, spec.max_side, spec.step) if spec else None,
                         base_ema=run.components.ema)


def _save(run: Run, *, final: bool) -> Iterator[Event]:
    acc, cfg = run.accelerator, run.cfg
    target = (run.output_dir / f"{cfg.output.name}.safetensors" if final
              else run.run_dir / f"{cfg.output.name}-step{run.step:07d}.safetensors")
    path = checkpoint_dir(run.run_dir, run.step)
    acc.wait_for_everyone()
    if run.main:
        extra = {f"initial_{prefix}": sd for prefix, sd in (run.initial or {}).items()}
        if run.ema is not None:
            extra["ema"] = run.ema.state_dict()
        net = cfg.network
        ckpt.save_checkpoint(path, adapters=adapter_state_dicts(run.unet, run.trained_tes, run.family),
                             optimizer=run.optimizer, lr_scheduler=run.lr_scheduler, noise_gen=run.noise_gen,
                             position=ckpt.LoopPosition(step=run.step, epoch=run.epoch, index=run.index,
                                                        family=run.family, rank=net.rank,
                                                        train_text_encoder=net.train_text_encoder, network=net.type,
                                                        optimizer=cfg.optimizer.name),
                             keep=cfg.output.keep_checkpoints, extra=extra)
        with _evaluation(run):
            export_lora(target, unet=run.unet, trained_text_encoders=run.trained_tes, family=run.family,
                        network=net, dtype=cfg.output.dtype, metadata=training_metadata(cfg, _facts(run)),
                        initial=run.initial)
    acc.wait_for_everyone()
    run.outputs.append(str(target))
    if run.main:
        yield Checkpoint(path=str(path), step=run.step, lora_path=str(target))


def _validate(run: Run) -> Iterator[Event]:
    if not run.main:
        return
    unet = run.accelerator.unwrap_model(run.unet)
    sam = run.cfg.sampling
    with _evaluation(run):
        loss = validation_loss(run.dataset.validation,
                               lambda b, t, n: _batch_loss(run, b, timesteps=t, noise=n, augment=False, unet=unet),
                               num_train_timesteps=run.scheduler.config.num_train_timesteps,
                               count=sam.validation_timesteps, seed=sam.validation_seed)
    yield Validation(step=run.step, loss=loss)
    if run.tensorboard:
        run.tensorboard.scalars(run.step, {"loss/validation": loss})
    if note := run.trend.add(run.step, loss):
        yield Log(level="warning", text=note)


def _sample(run: Run) -> Iterator[Event]:
    if not run.main:
        return
    out_dir = run.run_dir / "samples"
    with _evaluation(run), run.accelerator.autocast():
        results = render_samples(run.components, run.unet, run.trained_tes or run.components.text_encoders,
                                 run.cfg.sampling, resolution=run.cfg.dataset.resolution, step=run.step,
                                 out_dir=out_dir)
    for i, (prompt, seed, path) in enumerate(results):
        yield Sample(step=run.step, prompt=prompt, seed=seed, path=str(path))
        if run.tensorboard:
            run.tensorboard.image(run.step, f"samples/{i}", path)
    if run.cfg.sampling.grid:
        write_grid(out_dir)
