"""One LoRA training step on real-size UNets: ours against a minimal diffusers + peft loop, on a GPU.

Issue 6, acceptance 5. Random-initialised UNets built from the bundled configs (`resources/configs/`): the
SD 1.5 shape at 512 px and the SDXL shape at 1024 px; LoRA rank 16 (alpha 16) on the same layers in both
loops (sd-scripts' default set: every linear and 1×1 conv in the transformer blocks); batch 1 and 4; bf16
base weights with fp32 LoRA parameters; with and without gradient checkpointing. For each: median step
time, images/s, peak VRAM and model FLOPs utilisation (MFU).

- **ours**: the engine's stage functions (`studio.train.setup`: precision, adapters, fused AdamW) driven
  through `accelerate` as `studio.train.engine` drives them, with gradient-norm clipping at 1.0;
- **reference**: what a user writes from the diffusers LoRA example: `unet.add_adapter(LoraConfig(...))`,
  `cast_training_params`, `torch.autocast`, `torch.optim.AdamW`, clipping at 1.0.

Both get the same noise, timesteps and conditioning (random text embeddings and SDXL size conditioning:
the text encoders and VAE are not part of the step being measured).

Speed options (issue 7), as variants of the two loops (`--variants`):
- **ours** is the engine's defaults on the device: SDPA attention (enforced), channels-last on CUDA,
  fused AdamW on CUDA, latents cached before the loop;
- **ours+compile**: plus `torch.compile` of the UNet (the `compile_unet` option; `--compile-backend`);
- **ours-channels_last**: ours with channels-last off, to show what it is worth;
- **reference+vae**: the reference with the VAE encoding every batch inside the step, as the diffusers
  example script does without latent caching (what `cache_latents` saves). MFU counts the FLOPs of one step
without recomputation (`torch.utils.flop_counter`), so gradient checkpointing shows up as lower MFU.

Usage:
    python bench/gpu_step.py                 # on a CUDA machine; writes bench/results/gpu_step.{json,md}
    python bench/gpu_step.py --tiny-cpu      # the same code on the tiny models on the CPU (a smoke test)
Without CUDA and without --tiny-cpu it says that it needs a GPU, leaves earlier GPU results alone (or
writes a note if there are none) and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RANK, ALPHA, LR = 16, 16.0, 1e-4
RESOLUTION = {"sd1": 512, "sdxl": 1024}
# dense bf16 tensor-core peak, TFLOP/s (vendor data sheets); matched against the CUDA device name
PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("GH200", 989.4),
               ("A100", 312.0), ("L40S", 362.1), ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0))


@dataclass
class Result:
    model: str
    resolution: int
    batch: int
    gradient_checkpointing: bool
    impl: str  # ours | reference
    status: str = "ok"  # ok | out of memory | error: …
    step_s: float | None = None  # median
    step_s_all: list[float] = field(default_factory=list)
    images_per_s: float | None = None
    peak_vram_gib: float | None = None
    model_tflop_per_step: float | None = None
    mfu: float | None = None
    trainable_params: int | None = None
    loss: float | None = None
    lora_updated: bool | None = None  # the LoRA weights moved: gradients reached them (also when checkpointing)


# ---------------------------------------------------------------------------------------------------
# Models and inputs


def build_unet(family: str, tiny: bool, device: torch.device, dtype: torch.dtype):
    """A random-initialised UNet of `family`: the bundled real-size config, or the tiny test model."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    if tiny:
        from studio.models.tiny import build_tiny_pipeline

        unet = build_tiny_pipeline(family).unet
    else:
        from studio.models.configs import shipped_config

        config = UNet2DConditionModel.load_config(shipped_config(family), subfolder="unet")
        with torch.device(device):  # initialise on the GPU: SDXL's 2.6 B parameters in fp32 are 10 GB
            unet = UNet2DConditionModel.from_config(config)
    return unet.to(device, dtype=dtype).requires_grad_(False)


@dataclass
class Inputs:
    latents: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor
    hidden: torch.Tensor
    added: dict[str, torch.Tensor] | None
    pixels: torch.Tensor | None = None  # for reference+vae: the images the latents stand for


def make_inputs(unet, family: str, resolution: int, batch: int, steps: int, device, dtype,
                with_pixels: bool = False) -> list[Inputs]:
    """Fixed random batches, the same for both loops (created up front: no host work inside the timing)."""
    cfg = unet.config
    side = resolution // 8
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(steps):
        added = None
        if family == "sdxl":
            pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
            time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch, dtype=dtype)
            added = {"text_embeds": torch.randn(batch, pooled, generator=gen).to(device, dtype),
                     "time_ids": time_ids.to(device)}
        out.append(Inputs(
            latents=torch.randn(batch, 4, side, side, generator=gen).to(device, dtype),
            noise=torch.randn(batch, 4, side, side, generator=gen).to(device, dtype),
            timesteps=torch.randint(0, 1000, (batch,), generator=gen).to(device),
            hidden=torch.randn(batch, 77, cfg.cross_attention_dim, generator=gen).to(device, dtype),
            added=added,
            pixels=(torch.rand(batch, 3, resolution, resolution, generator=gen) * 2 - 1).to(device, dtype)
            if with_pixels else None))
    return out


def noise_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)


# ---------------------------------------------------------------------------------------------------
# The two loops. Each returns (step function, trained parameters); a step returns the loss.


def ours(unet, device: torch.device, gradient_checkpointing: bool, *, channels_last: bool | None = None,
         compile_unet: bool = False) -> tuple[Callable[[Inputs], torch.Tensor], list]:
    """The engine's step; `channels_last=None` is the engine's `auto` (on with CUDA)."""
    from accelerate import Accelerator

    from studio.config import NetworkConfig, OptimizerConfig
    from studio.train import speed
    from studio.train.networks import add_adapters
    from studio.train.optimizers import make_optimizer, trainable_parameters
    from studio.train.setup import choose_precision

    precision = choose_precision("bf16", device)
    acc = Accelerator(mixed_precision=precision.mixed, cpu=device.type != "cuda")
    net = NetworkConfig(rank=RANK, alpha=ALPHA, targets="transformer")
    trained = add_adapters(unet, [], net, train_text_encoder=False, seed=0)
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    speed.ensure_sdpa(unet)
    use_cl = speed.use_channels_last("auto", device) if channels_last is None else channels_last
    speed.apply_speed_options(unet, channels_last=use_cl, compile_unet=compile_unet)
    optimizer = make_optimizer(trained, OptimizerConfig(unet_lr=LR), fused=device.type == "cuda")
    model, optimizer = acc.prepare(unet, optimizer)
    params = trainable_parameters(model)
    sched = noise_scheduler()

    def step(x: Inputs) -> torch.Tensor:
        noisy = sched.add_noise(x.latents, x.noise, x.timesteps)
        kwargs = {"added_cond_kwargs": x.added} if x.added else {}
        with acc.autocast():
            pred = model(noisy, x.timesteps, encoder_hidden_states=x.hidden, **kwargs).sample
        loss = F.mse_loss(pred.float(), x.noise.float())
        acc.backward(loss)
        acc.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step, params


def reference(unet, device: torch.device, gradient_checkpointing: bool, *,
              vae=None) -> tuple[Callable[[Inputs], torch.Tensor], list]:
    """The diffusers example's loop; with `vae`, it encodes each batch's pixels inside the step."""
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    from studio.train.targets import unet_targets

    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, init_lora_weights=True,
                                target_modules=unet_targets("transformer")))
    if device.type == "cuda":
        cast_training_params(unet, dtype=torch.float32)  # only the LoRA parameters train, in fp32
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=1e-2)
    sched = noise_scheduler()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)

    def step(x: Inputs) -> torch.Tensor:
        latents = x.latents
        if vae is not None:
            with torch.no_grad():
                latents = vae.encode(x.pixels.to(vae.dtype)).latent_dist.sample() * vae.config.scaling_factor
            latents = latents.to(x.latents.dtype)
        noisy = sched.add_noise(latents, x.noise, x.timesteps)
        kwargs = {"added_cond_kwargs": x.added} if x.added else {}
        with autocast:
            pred = unet(noisy, x.timesteps, encoder_hidden_states=x.hidden, **kwargs).sample
        loss = F.mse_loss(pred.float(), x.noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step, params


# the VAE for reference+vae, built per model by run_all
_VAE: dict[str, object] = {}
COMPILE_BACKEND = {"value": "inductor"}


def _ours_compiled(unet, device, gradient_checkpointing):
    from studio.train import speed

    speed.COMPILE_BACKEND = COMPILE_BACKEND["value"]
    return ours(unet, device, gradient_checkpointing, compile_unet=True)


IMPLS = {
    "ours": ours,
    "ours+compile": _ours_compiled,
    "ours-channels_last": lambda unet, device, gc: ours(unet, device, gc, channels_last=False),
    "reference": reference,
    "reference+vae": lambda unet, device, gc: reference(unet, device, gc, vae=_VAE["vae"]),
}


def build_vae(family: str, tiny: bool, device: torch.device, dtype: torch.dtype):
    """A random-initialised VAE of `family` (fp32 for SDXL, whose VAE overflows in fp16/bf16)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    if tiny:
        from studio.models.tiny import build_tiny_pipeline

        vae = build_tiny_pipeline(family).vae
    else:
        from studio.models.configs import shipped_config

        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(shipped_config(family), subfolder="vae"))
    return vae.to(device, dtype=torch.float32 if family == "sdxl" else dtype).requires_grad_(False).eval()


# ---------------------------------------------------------------------------------------------------
# Measuring


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_step_flops(base, inputs: Inputs, device: torch.device) -> float:
    """FLOPs of one training step (forward + backward, no recomputation), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    step, _ = reference(copy.deepcopy(base), device, gradient_checkpointing=False)
    with FlopCounterMode(display=False) as counter:
        step(inputs)
    sync(device)
    return float(counter.get_total_flops())


def measure(base, impl: str, r: Result, inputs: list[Inputs], warmup: int, device: torch.device,
            peak_tflops: float | None) -> Result:
    unet = copy.deepcopy(base)
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        step, params = IMPLS[impl](unet, device, r.gradient_checkpointing)
        r.trainable_params = sum(p.numel() for p in params)
        before = [p.detach().clone() for p in params]
        times = []
        for i, x in enumerate(inputs):
            sync(device)
            t0 = time.perf_counter()
            loss = step(x)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        r.loss = float(loss)
        r.lora_updated = any(not torch.equal(a, b) for a, b in zip(before, params))
        del before
        r.step_s_all = [round(t, 5) for t in times]
        r.step_s = statistics.median(times)
        r.images_per_s = r.batch / r.step_s
        if device.type == "cuda":
            r.peak_vram_gib = torch.cuda.max_memory_allocated(device) / 2**30
        if r.model_tflop_per_step and peak_tflops:
            r.mfu = r.model_tflop_per_step / r.step_s / peak_tflops
    except torch.cuda.OutOfMemoryError:
        r.status = "out of memory"
    except RuntimeError as exc:  # keep the other configurations going; the table shows what failed
        r.status = f"error: {str(exc).splitlines()[0][:200]}"
    finally:
        del unet
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return r


def device_peak(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS:
        if key in name:
            return value
    return None


def environment(device: torch.device, tiny: bool, peak: float | None) -> dict:
    import diffusers
    import peft

    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor()})",
           "torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__,
           "python": platform.python_version(), "tiny_models": tiny, "peak_bf16_tflops": peak,
           "rank": RANK, "alpha": ALPHA, "targets": "transformer (sd-scripts default)",
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["vram_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    return env


# ---------------------------------------------------------------------------------------------------
# Reporting


def markdown(env: dict, results: list[Result]) -> str:
    lines = ["# LoRA training step on real-size UNets: ours vs diffusers + peft", "",
             f"Device: {env['device']}; torch {env['torch']}, diffusers {env['diffusers']}, peft {env['peft']}; "
             f"LoRA rank {env['rank']} on the transformer layers; bf16 base weights, fp32 LoRA parameters; "
             f"peak bf16 {env['peak_bf16_tflops'] or 'unknown'} TFLOP/s (for MFU). {env['date']}.", ""]
    if env["tiny_models"]:
        lines += ["**Tiny models on the CPU (`--tiny-cpu`): a smoke test of the script, not a benchmark.**", ""]
    lines += ["| model | px | batch | grad ckpt | impl | step (s) | images/s | peak VRAM (GiB) | MFU | vs reference |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {(r.model, r.batch, r.gradient_checkpointing, r.impl): r for r in results}
    for r in results:
        def fmt(v, f):
            return f.format(v) if v is not None else "–"

        ratio = "–"
        ref = by_key.get((r.model, r.batch, r.gradient_checkpointing, "reference"))
        recipe = by_key.get((r.model, r.batch, r.gradient_checkpointing, "reference+vae"))
        if r.impl.startswith("ours") and r.step_s and ref and ref.step_s:
            ratio = f"{r.step_s / ref.step_s:.2f}× time"
            if recipe and recipe.step_s:
                ratio += f"; {recipe.step_s / r.step_s:.2f}× faster than reference+vae"
        if r.status != "ok":
            lines.append(f"| {r.model} | {r.resolution} | {r.batch} | {'on' if r.gradient_checkpointing else 'off'} "
                         f"| {r.impl} | {r.status} | | | | |")
            continue
        lines.append(f"| {r.model} | {r.resolution} | {r.batch} | {'on' if r.gradient_checkpointing else 'off'} | "
                     f"{r.impl} | {r.step_s:.3f} | {r.images_per_s:.2f} | {fmt(r.peak_vram_gib, '{:.1f}')} | "
                     f"{fmt(r.mfu, '{:.1%}')} | {ratio} |")
    lines += ["", "Step time is the median of the measured steps after warm-up; MFU = model FLOPs of one step "
              "(forward + backward, counted by `torch.utils.flop_counter`, no recomputation) / step time / peak.",
              "Peak VRAM includes the bf16 base weights. Produced by `bench/gpu_step.py`.", ""]
    return "\n".join(lines)


def write(out: Path, stem: str, env: dict, results: list[Result]) -> None:
    from studio.fileio import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{stem}.json",
                      json.dumps({"environment": env, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    atomic_write_text(out / f"{stem}.md", markdown(env, results))


def write_needs_gpu_note(out: Path) -> None:
    from studio.fileio import atomic_write_text

    existing = out / "gpu_step.json"
    if existing.is_file():
        try:
            if not json.loads(existing.read_text())["environment"].get("tiny_models", True):
                print(f"{existing} holds results from a GPU run; left as it is.")
                return
        except (ValueError, KeyError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    note = ("# gpu_step: not run\n\nThis machine has no CUDA GPU. `bench/gpu_step.py` measures real-size UNets "
            "and needs one; run it on a GPU machine (or `--tiny-cpu` for a smoke test of the script).\n")
    atomic_write_text(out / "gpu_step.md", note)
    atomic_write_text(out / "gpu_step.json", json.dumps({"status": "skipped", "reason": "no CUDA GPU"}) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny-cpu", action="store_true", help="run the same code on the tiny models on the CPU")
    ap.add_argument("--models", default="sd1,sdxl")
    ap.add_argument("--batches", default=None, help="batch sizes (default 1,4 on GPU, 1 tiny)")
    ap.add_argument("--checkpointing", default="off,on", help="gradient checkpointing settings to run")
    ap.add_argument("--steps", type=int, default=None, help="measured steps (default 10 on GPU, 2 tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 3 on GPU, 1 tiny)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak bf16 TFLOP/s for MFU")
    ap.add_argument("--variants", default=None,
                    help="loops to time, of " + ", ".join(IMPLS) + " (default: all on GPU, reference,ours tiny)")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend for ours+compile")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)

    tiny = args.tiny_cpu
    COMPILE_BACKEND["value"] = args.compile_backend
    variants = (args.variants or ("reference,ours" if tiny else ",".join(IMPLS))).split(",")
    unknown = [v for v in variants if v not in IMPLS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(IMPLS)}")
    args.variant_list = variants
    if not tiny and not torch.cuda.is_available():
        print("bench/gpu_step.py needs a CUDA GPU (real-size SD 1.5 and SDXL UNets); none here. "
              "Use --tiny-cpu to check the script on the tiny models.")
        write_needs_gpu_note(args.out)
        return 0
    device = torch.device("cpu" if tiny else "cuda")
    dtype = torch.float32 if tiny else torch.bfloat16
    steps = args.steps if args.steps is not None else (2 if tiny else 10)
    warmup = args.warmup if args.warmup is not None else (1 if tiny else 3)
    batch_sizes = [int(b) for b in (args.batches or ("1" if tiny else "1,4")).split(",")]
    peak = device_peak(device, args.peak_tflops)
    env = environment(device, tiny, peak)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    from studio.libraries import quiet_libraries

    quiet_libraries()
    threads = torch.get_num_threads()
    if tiny:  # a smoke test on shared CPUs: one thread is faster there than threads fighting for cores
        torch.set_num_threads(1)
    try:
        results = run_all(args, tiny, device, dtype, steps, warmup, batch_sizes, peak)
    finally:
        torch.set_num_threads(threads)
    write(args.out, "gpu_step_tiny" if tiny else "gpu_step", env, results)
    print(markdown(env, results))
    return 0


def run_all(args, tiny: bool, device: torch.device, dtype: torch.dtype, steps: int, warmup: int,
            batch_sizes: list[int], peak: float | None) -> list[Result]:
    results: list[Result] = []
    for family in args.models.split(","):
        resolution = 64 if tiny else RESOLUTION[family]
        base = build_unet(family, tiny, device, dtype)
        with_vae = "reference+vae" in args.variant_list
        if with_vae:
            _VAE["vae"] = build_vae(family, tiny, device, dtype)
        for batch in batch_sizes:
            inputs = make_inputs(base, family, resolution, batch, warmup + steps, device, dtype, with_pixels=with_vae)
            try:
                flops = count_step_flops(base, inputs[0], device) / 1e12
            except torch.cuda.OutOfMemoryError:
                flops = None
            for ckpt in (c == "on" for c in args.checkpointing.split(",")):
                for impl in args.variant_list:
                    r = Result(model=family, resolution=resolution, batch=batch, gradient_checkpointing=ckpt,
                               impl=impl, model_tflop_per_step=flops)
                    results.append(measure(base, impl, r, inputs, warmup, device, peak))
                    done = results[-1]
                    print(f"{family} {resolution}px b{batch} ckpt={'on' if ckpt else 'off'} {impl}: "
                          f"{done.status if done.status != 'ok' else f'{done.step_s:.3f} s/step'}", flush=True)
        del base
        _VAE.clear()
    return results


if __name__ == "__main__":
    sys.exit(main())
