"""The training engine: a generator of events. The CLI, the worker process and the tests just iterate it.

Each `yield` is a progress report and a safe point to pause, stop, save or sample (napari's generator
jobs), so no thread ever has to be killed. Everything the user might want back after a crash — the
config, the event log, checkpoints, exports — is written into the run folder as it happens.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.config import ProjectConfig, resolve_path
from studio.errors import ConfigError, ModelLoadError, StudioError
from studio.events import (Checkpoint, Event, Failed, Finished, Log, Progress, Sample, Started, StateChanged)
from studio.libraries import quiet_libraries
from studio.formats.metadata import TrainingFacts, training_metadata
from studio.models.load import Components, load_components
from studio.train import checkpoint as ckpt
from studio.train.conditioning import TextConditioner, sdxl_time_ids
from studio.train.control import TrainControl
from studio.train.data import PreparedDataset, batches, collect_images, prepare_dataset, steps_per_epoch
from studio.train.export import adapter_state_dicts, export_lora, load_adapter_state_dicts
from studio.train.runs import EventLog, new_run_dir, write_config_snapshot
from studio.train.sampling import render_samples
from studio.train.setup import add_adapters, choose_precision, make_lr_scheduler, make_optimizer, trainable_parameters

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
    step: int = 0
    epoch: int = 0
    index: int = 0
    outputs: list[str] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def family(self) -> str:
        return self.components.family


def run_training(cfg: ProjectConfig, *, project_file: str | Path | None = None,
                 control: TrainControl | None = None, resume_from: str | Path | None = None,
                 run_dir: str | Path | None = None) -> Iterator[Event]:
    """Train, yielding events; ends with exactly one Finished or Failed event.

    Bad input (StudioError) is reported as Failed with a message and hint, never raised; nothing is
    written before the dataset and the model have been checked.
    """
    control = control or TrainControl()
    log: EventLog | None = None
    try:
        for event in _train(cfg, project_file, control, resume_from, run_dir):
            if isinstance(event, Started):
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
    quiet_libraries()
    records, folder_problems = collect_images(cfg.dataset, resolve)
    if not cfg.model.path:
        raise ModelLoadError("no base model is set", hint="choose a model file or folder ([model] path, or --model)")
    position = ckpt.read_position(Path(resume_from)) if resume_from else None
    components = load_components(resolve(cfg.model.path), family=cfg.model.family, prediction=cfg.model.prediction)
    if position:
        _check_resumable(position, cfg, components.family)
    runs_root = Path(project_file).resolve().parent / "runs" if project_file else resolve(cfg.output.directory) / "runs"
    if run_dir:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    elif resume_from:
        run_dir = Path(resume_from).resolve().parent.parent
    else:
        run_dir = new_run_dir(runs_root, cfg.output.name)
    write_config_snapshot(run_dir, cfg)
    start_step = position.step if position else 0
    yield Started(run_dir=str(run_dir), total_steps=cfg.schedule.max_steps, start_step=start_step,
                  num_images=len(records), device=_device_name())
    for message in folder_problems:
        yield Log(level="warning", text=message)

    run = _setup(cfg, components, records, run_dir, resolve(cfg.output.directory), position, resume_from)
    for message in run.dataset.skipped:
        yield Log(level="warning", text=f"skipped {message}")
    yield Log(level="info", text=f"{len(run.dataset.examples)} images, {run.dataset.epoch_length} per epoch with "
                                 f"repeats, {components.family} model, training on {_device_name()}")
    yield StateChanged(state="running")
    yield from _loop(run, control)


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def _check_resumable(position: ckpt.LoopPosition, cfg: ProjectConfig, family: str) -> None:
    if position.family != family:
        raise ConfigError(f"this checkpoint was trained on a {position.family} model and the chosen base model is "
                          f"{family}; a LoRA cannot continue on another model family",
                          hint="choose the base model the run was started with, or start a new run")
    if position.rank != cfg.network.rank or position.train_text_encoder != cfg.network.train_text_encoder:
        raise ConfigError(f"the checkpoint has rank {position.rank} (text encoder trained: "
                          f"{position.train_text_encoder}); the settings ask for rank {cfg.network.rank} "
                          f"(text encoder: {cfg.network.train_text_encoder})",
                          hint="resume with the settings of the original run (its config.toml)")


def _setup(cfg: ProjectConfig, components: Components, records, run_dir: Path, output_dir: Path,
           position: ckpt.LoopPosition | None, resume_from) -> Run:
    from accelerate import Accelerator

    sched = cfg.schedule
    probe = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    precision = choose_precision(sched.mixed_precision, probe)
    accelerator = Accelerator(mixed_precision=precision.mixed, gradient_accumulation_steps=sched.gradient_accumulation,
                              cpu=not torch.cuda.is_available())
    device = accelerator.device
    torch.manual_seed(sched.seed)

    unet, tes, vae = components.unet, list(components.text_encoders), components.vae
    vae.requires_grad_(False)
    # the SDXL VAE overflows in fp16; encoding happens once, so fp32 costs nothing per step
    vae.to(device, dtype=torch.float32 if components.is_sdxl else precision.weights)
    unet.to(device, dtype=precision.weights)
    for te in tes:
        te.to(device, dtype=precision.weights)
    trained = add_adapters(unet, tes, cfg.network, seed=sched.seed)
    if sched.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        for te in trained[1:]:
            te.gradient_checkpointing_enable()
    unet.train()
    for te in trained[1:]:
        te.train()

    dataset = prepare_dataset(records, cfg.dataset.resolution, vae, device=device,
                              dtype=torch.float32 if components.is_sdxl else precision.weights, seed=sched.seed)
    optimizer = make_optimizer(trained, cfg.optimizer, fused=device.type == "cuda")
    lr_scheduler = make_lr_scheduler(optimizer, sched, accelerator.num_processes)
    prepared = accelerator.prepare(*trained, optimizer, lr_scheduler)
    trained, optimizer, lr_scheduler = list(prepared[:-2]), prepared[-2], prepared[-1]
    noise_gen = torch.Generator(device="cpu").manual_seed(sched.seed + accelerator.process_index)
    conditioner = TextConditioner(components, clip_skip=cfg.model.clip_skip, device=device,
                                  cache=not cfg.network.train_text_encoder)
    run = Run(cfg=cfg, components=components, accelerator=accelerator, unet=trained[0], trained_tes=trained[1:],
              conditioner=conditioner, dataset=dataset, optimizer=optimizer, lr_scheduler=lr_scheduler,
              noise_gen=noise_gen, run_dir=run_dir, output_dir=output_dir, weight_dtype=precision.weights,
              mixed=precision.mixed, started_at=time.time())
    if position and resume_from:
        path = Path(resume_from)
        load_adapter_state_dicts(run.unet, run.trained_tes, run.family, ckpt.load_adapters(path))
        ckpt.restore_training_state(path, optimizer=optimizer, lr_scheduler=lr_scheduler, noise_gen=noise_gen)
        run.step, run.epoch, run.index = position.step, position.epoch, position.index
    return run


def _loss(run: Run, indices: list[int]) -> torch.Tensor:
    ds, comp = run.dataset, run.components
    latents = torch.stack([ds.examples[i].latents for i in indices]).to(run.device, dtype=run.weight_dtype)
    noise = torch.randn(latents.shape, generator=run.noise_gen, dtype=torch.float32).to(run.device, latents.dtype)
    steps = comp.scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (latents.shape[0],), generator=run.noise_gen).to(run.device)
    noisy = comp.scheduler.add_noise(latents, noise, timesteps)
    target = noise if comp.prediction == "epsilon" else comp.scheduler.get_velocity(latents, noise, timesteps)
    captions = [ds.examples[i].caption for i in indices]
    hidden, pooled = run.conditioner(captions)
    kwargs = {"encoder_hidden_states": hidden.to(run.weight_dtype)}
    if comp.is_sdxl:
        res = run.cfg.dataset.resolution
        time_ids = sdxl_time_ids([ds.examples[i].original_size for i in indices],
                                 [ds.examples[i].crop_top_left for i in indices], (res, res))
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(run.weight_dtype),
                                       "time_ids": time_ids.to(run.device, run.weight_dtype)}
    with run.accelerator.autocast():
        pred = run.unet(noisy, timesteps, **kwargs).sample
    return F.mse_loss(pred.float(), target.float(), reduction="mean")


def _loop(run: Run, control: TrainControl) -> Iterator[Event]:
    cfg, acc = run.cfg, run.accelerator
    sched, out = cfg.schedule, cfg.output
    world, rank = acc.num_processes, acc.process_index
    data = batches(run.dataset, sched.batch_size * world, sched.seed, start_epoch=run.epoch, start_index=run.index)
    per_epoch = steps_per_epoch(run.dataset, sched.batch_size * world, sched.gradient_accumulation)
    params = [p for m in (run.unet, *run.trained_tes) for p in trainable_parameters(m)]
    smoothed: float | None = None
    rate: float | None = None
    last_saved = run.step
    total = sched.max_steps
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
            mine = chunk[rank::world] or chunk[:1]
            with acc.accumulate(run.unet, *run.trained_tes):
                loss = _loss(run, mine)
                acc.backward(loss)
                if acc.sync_gradients and cfg.optimizer.max_grad_norm > 0:
                    acc.clip_grad_norm_(params, cfg.optimizer.max_grad_norm)
                run.optimizer.step()
                run.lr_scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach().item()
        run.step += 1
        value = loss_sum / sched.gradient_accumulation
        if not math.isfinite(value):
            raise StudioError(f"the loss became {value} at step {run.step}",
                              hint="lower the learning rate, or use bf16/fp32 instead of fp16")
        smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
        dt = max(time.perf_counter() - t0, 1e-9)
        rate = 1.0 / dt if rate is None else 0.8 * rate + 0.2 / dt
        mem = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        yield Progress(step=run.step, total=total, epoch=run.epoch + 1, loss=value,
                       smoothed_loss=smoothed, lr=float(run.lr_scheduler.get_last_lr()[0]), it_per_s=rate,
                       eta_s=(total - run.step) / rate, gpu_mem_mb=mem)
        every = out.save_every_n_steps
        if (every and run.step % every == 0 and run.step < total) or control.take_save():
            yield from _save(run, final=False)
            last_saved = run.step
        sample_every = cfg.sampling.every_n_steps
        if cfg.sampling.prompts and ((sample_every and run.step % sample_every == 0 and run.step < total)
                                     or control.take_sample()):
            yield from _sample(run)
    yield from _save(run, final=True)
    if cfg.sampling.prompts:
        yield from _sample(run)
    yield Finished(outputs=tuple(run.outputs), step=run.step)


def _facts(run: Run) -> TrainingFacts:
    per_epoch = steps_per_epoch(run.dataset, run.cfg.schedule.batch_size * run.accelerator.num_processes,
                                run.cfg.schedule.gradient_accumulation)
    return TrainingFacts(family=run.family, prediction=run.components.prediction,
                         model_name=run.components.source.name, num_images=run.dataset.epoch_length,
                         steps=run.step, epoch=max(1, math.ceil(run.step / per_epoch)), started_at=run.started_at,
                         finished_at=time.time(), mixed_precision=run.mixed,
                         tag_frequency=run.dataset.tag_frequency, dataset_dirs=run.dataset.dataset_dirs)


def _save(run: Run, *, final: bool) -> Iterator[Event]:
    """Checkpoint (resumable state) and export (the LoRA file) at the current step."""
    acc, cfg = run.accelerator, run.cfg
    acc.wait_for_everyone()
    if not acc.is_main_process:
        return
    path = ckpt.checkpoint_dir(run.run_dir, run.step)
    ckpt.save_checkpoint(path, adapters=adapter_state_dicts(run.unet, run.trained_tes, run.family),
                         optimizer=run.optimizer, lr_scheduler=run.lr_scheduler, noise_gen=run.noise_gen,
                         position=ckpt.LoopPosition(step=run.step, epoch=run.epoch, index=run.index,
                                                    family=run.family, rank=cfg.network.rank,
                                                    train_text_encoder=cfg.network.train_text_encoder),
                         keep=cfg.output.keep_checkpoints)
    target = (run.output_dir / f"{cfg.output.name}.safetensors" if final
              else run.run_dir / f"{cfg.output.name}-step{run.step:07d}.safetensors")
    export_lora(target, unet=run.unet, trained_text_encoders=run.trained_tes, family=run.family,
                alpha=cfg.network.alpha, dtype=cfg.output.dtype, metadata=training_metadata(cfg, _facts(run)))
    run.outputs.append(str(target))
    yield Checkpoint(path=str(path), step=run.step, lora_path=str(target))


def _sample(run: Run) -> Iterator[Event]:
    if not run.accelerator.is_main_process:
        return
    with run.accelerator.autocast():
        results = render_samples(run.components, run.unet, run.trained_tes or run.components.text_encoders,
                                 run.cfg.sampling, resolution=run.cfg.dataset.resolution, step=run.step,
                                 out_dir=run.run_dir / "samples", device=run.device)
    for prompt, seed, path in results:
        yield Sample(step=run.step, prompt=prompt, seed=seed, path=str(path))
