"""Mixer latency: from a strength change to a new preview, next to what users do without a mixer.

Measured side by side in one process, interleaved per repeat so load from other processes on these
shared CPUs hits every column alike (medians reported):

- **ours**: a `PreviewSession` (base loaded once); a new strength → re-patch the changed layers → sample.
  Also split into the patch alone and the sampling alone.
- **reference, reload**: what a user does without a live mixer — load a fresh diffusers pipeline, load
  both LoRAs (`load_lora_weights`), `set_adapters` at the strengths, generate. The issue's ratio.
- **reference, set_adapters**: the fastest diffusers way — pipeline and adapters loaded once, only
  `set_adapters` changes; peft then runs the LoRA branches at every denoising step.
- **worker**: the same change through the real worker process (JSON request, PNG written, result back),
  the path the window uses (without the panel's 250 ms debounce).

Usage:
    python bench/mixer.py [--steps 8] [--size 128] [--repeats 5]     tiny SD 1.5-architecture model on the CPU
    python bench/mixer.py --sd15-gpu                                  real-size random SD 1.5, 512 px, 20 steps, CUDA
Writes bench/results/mixer.{json,md} (tiny) or bench/results/mixer_sd15_gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.fileio import atomic_write_text  # noqa: E402
from studio.mix.preview import PreviewSession  # noqa: E402
from studio.mix.request import MixEntry, RenderRequest  # noqa: E402

PROMPT = "a photo of a cat, best quality"
STRENGTHS = (0.2, 0.45, 0.7, 0.95, 1.2, 0.6, 0.35, 0.85, 1.05, 0.5)
GPU_TARGET_S = 1.5


@dataclass
class Column:
    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process, all threads

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    def add(self, sample: tuple[float, float]) -> None:
        self.times.append(sample[0])
        self.cpu.append(sample[1])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a loaded shared machine the CPU time is the steadier."""
    gc.collect()  # a dropped pipeline's reference cycles must not be collected inside the next column's timing
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


# ---------------------------------------------------------------------------------------------------
# models and LoRAs


def tiny_inputs(folder: Path, rank: int) -> tuple[Path, list[Path]]:
    from studio.models.tiny import save_tiny_model
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    pipe = save_tiny_model(folder / "tiny-sd1", "sd1")
    loras = [write_kohya(random_lora(pipe, "sd1", rank=rank, alpha=rank / 2, seed=s, scale=0.3,
                                     metadata=lora_metadata("sd1", f"bench{s}")), folder / f"bench{s}.safetensors")
             for s in (1, 2)]
    return folder / "tiny-sd1", loras


def sd15_inputs(folder: Path, rank: int, device: torch.device) -> tuple[Path, list[Path]]:
    """A real-size, random-initialised SD 1.5 (bundled configs) saved as fp16 diffusers folder, and two LoRAs."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.models.configs import load_tokenizer, shipped_config
    from tests.lora_maker import lora_metadata, random_lora, write_kohya

    cfg = shipped_config("sd1")
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg, subfolder="vae"))
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg, subfolder="text_encoder"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=load_tokenizer(cfg / "tokenizer"), unet=unet,
                                   scheduler=DDPMScheduler.from_pretrained(cfg, subfolder="scheduler"),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(folder / "sd15-random", safe_serialization=True)
    pipe = pipe.to("cpu", torch.float32)
    loras = [write_kohya(random_lora(pipe, "sd1", rank=rank, alpha=rank / 2, seed=s, scale=0.02,
                                     metadata=lora_metadata("sd1", f"bench{s}")), folder / f"bench{s}.safetensors")
             for s in (1, 2)]
    del pipe
    return folder / "sd15-random", loras


# ---------------------------------------------------------------------------------------------------
# the columns


def request(loras: list[Path], a: float, steps: int, size: int) -> RenderRequest:
    return RenderRequest(prompt=PROMPT, negative="blurry", seed=1, steps=steps, width=size, height=size, guidance=7.0,
                         loras=(MixEntry(str(loras[0]), a), MixEntry(str(loras[1]), -0.4)))


def diffusers_pipeline(base: Path, loras: list[Path], device: torch.device, dtype: torch.dtype):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base, torch_dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    for i, path in enumerate(loras):
        pipe.load_lora_weights(str(path), adapter_name=f"l{i}")
    return pipe


def diffusers_render(pipe, a: float, steps: int, size: int):
    pipe.set_adapters(["l0", "l1"], adapter_weights=[a, -0.4])
    return pipe(prompt=PROMPT, negative_prompt="blurry", num_inference_steps=steps, width=size, height=size,
                guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(1)).images[0]


class WorkerColumn:
    """The same preview through the real worker process, as the window sends it."""

    def __init__(self, base: Path, out: Path, threads: int | None) -> None:
        from studio.worker.client import WorkerProcess, worker_env

        self.base, self.out = base, out
        extra = {"OMP_NUM_THREADS": str(threads)} if threads else {}  # the same CPU threads as the other columns
        self.proc = WorkerProcess(env=worker_env(extra))
        self.proc.start()
        self.n = 0

    def render(self, req: RenderRequest) -> None:
        from studio.events import Failed
        from studio.job_requests import MixPreviewRequest
        from studio.mix.messages import MixResult

        self.n += 1
        self.proc.send(MixPreviewRequest(base=str(self.base), out=str(self.out / f"w{self.n}.png"), request_id=self.n,
                                         request=req))
        got = self.proc.wait_for(lambda m: isinstance(m, Failed) or isinstance(m, MixResult) and m.request_id == self.n,
                                 600)
        if isinstance(got, Failed):
            raise RuntimeError(got.error)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait_exited(10)


def run(base: Path, loras: list[Path], *, device: torch.device, dtype: torch.dtype, steps: int, size: int,
        repeats: int, worker: bool, tmp: Path, threads: int | None = None) -> dict:
    cols = {k: Column(k) for k in ("ours", "ours_patch", "ours_sample", "reload", "set_adapters", "worker")}
    t0 = time.perf_counter()
    session = PreviewSession.open(base, device=device, dtype=dtype)
    open_s = time.perf_counter() - t0
    session.render(request(loras, 1.0, steps, size))  # warm-up: first read of the LoRAs, kernels
    live = diffusers_pipeline(base, loras, device, dtype)
    diffusers_render(live, 1.0, steps, size)
    w = WorkerColumn(base, tmp, threads) if worker else None
    if w is not None:
        w.render(request(loras, 1.0, steps, size))  # loads the base model in the worker
    for i in range(repeats):
        a = STRENGTHS[i % len(STRENGTHS)]
        req = request(loras, a, steps, size)
        cols["ours"].add(timed(lambda: session.render(req), device))
        req2 = request(loras, a + 0.05, steps, size)
        cols["ours_patch"].add(timed(lambda: session.apply(req2.loras), device))
        cols["ours_sample"].add(timed(lambda: session.render(req2), device))  # already patched
        cols["set_adapters"].add(timed(lambda: diffusers_render(live, a, steps, size), device))

        def reload_and_render():
            pipe = diffusers_pipeline(base, loras, device, dtype)
            diffusers_render(pipe, a, steps, size)

        cols["reload"].add(timed(reload_and_render, device))
        if w is not None:
            cols["worker"].add(timed(lambda: w.render(request(loras, a + 0.1, steps, size)), device))
    if w is not None:
        w.close()
    return {"session_open_s": round(open_s, 3),
            "columns": {k: {"median_s": round(c.median, 4), "cpu_median_s": round(c.cpu_median, 4),
                            "times_s": [round(t, 4) for t in c.times]}
                        for k, c in cols.items() if c.times}}


def environment(device: torch.device, args, kind: str) -> dict:
    import os

    env = {"model": kind, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "steps": args.steps, "size": args.size, "repeats": args.repeats,
           "rank": args.rank, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if hasattr(os, "getloadavg"):
        env["load_average"] = round(os.getloadavg()[0], 2)
    return env


def markdown(env: dict, result: dict, title: str) -> str:
    c = result["columns"]
    ours, ours_cpu = c["ours"]["median_s"], c["ours"]["cpu_median_s"]
    lines = [f"# {title}", "",
             f"{env['model']}, {env['size']} px, {env['steps']} Euler steps, CFG 7, two LoRAs of rank {env['rank']} "
             f"(UNet + text encoder), {env['repeats']} interleaved repeats on {env['device']} "
             f"(torch {env['torch']}, {env['torch_threads']} threads, load average {env.get('load_average', '?')}, "
             f"{env['date']}).", "",
             "| from a strength change to a new image | median wall (s) | ÷ ours | median CPU (s) | ÷ ours |",
             "|---|---:|---:|---:|---:|"]
    labels = {"ours": "**ours**: PreviewSession, patch changed layers + sample",
              "ours_patch": "  of which: re-patching the layers",
              "ours_sample": "  of which: sampling (already patched)",
              "worker": "ours through the worker process (request → PNG → result)",
              "set_adapters": "diffusers, pipeline + adapters loaded once, `set_adapters` + generate",
              "reload": "reference: fresh pipeline + `load_lora_weights` ×2 + `set_adapters` + generate"}
    for key in ("ours", "ours_patch", "ours_sample", "worker", "set_adapters", "reload"):
        if key in c:
            cpu = c[key]["cpu_median_s"]
            cpu_cells = "| — | —" if key == "worker" else f"| {cpu:.3f} | {cpu / ours_cpu:.2f}"
            lines.append(f"| {labels[key]} | {c[key]['median_s']:.3f} | {c[key]['median_s'] / ours:.2f} {cpu_cells} |")
    lines += ["", f"Opening the session (loading the base model once): {result['session_open_s']:.2f} s.",
              f"Ours ÷ reload = **{ours / c['reload']['median_s']:.3f}** wall, "
              f"**{ours_cpu / c['reload']['cpu_median_s']:.3f}** CPU (a slider move costs that fraction of "
              "reloading and generating). The worker column's CPU is spent in another process (not counted).",
              "On this shared 2-core machine wall times grow with the load average; the ratios are what carries over."]
    if env["device"] != "cpu":
        met = "met" if ours < GPU_TARGET_S else "not met"
        lines.append(f"Target on GPU: under {GPU_TARGET_S} s from slider to image → **{met}** ({ours:.2f} s).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sd15-gpu", action="store_true", help="real-size random SD 1.5 at 512 px, 20 steps, on CUDA")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rank", type=int, default=None)
    ap.add_argument("--no-worker", action="store_true", help="skip the worker-process column")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: steadiest on a shared machine, no OpenMP spin-waiting)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    from studio.libraries import quiet_libraries

    quiet_libraries()
    stem = "mixer_sd15_gpu" if args.sd15_gpu else "mixer"
    if args.sd15_gpu and not torch.cuda.is_available():
        note = ("# mixer --sd15-gpu: not run\n\nThis machine has no CUDA GPU. The real-size SD 1.5 measurement "
                "(512 px, 20 steps, target under 1.5 s from slider to image) needs one; the tiny-model figures are "
                "in mixer.md.\n")
        args.out.mkdir(parents=True, exist_ok=True)
        existing = args.out / f"{stem}.json"
        if not (existing.is_file() and "columns" in existing.read_text()):
            atomic_write_text(args.out / f"{stem}.md", note)
            atomic_write_text(existing, json.dumps({"status": "skipped", "reason": "no CUDA GPU"}) + "\n")
        print("no CUDA GPU: --sd15-gpu skipped (a note is in bench/results/mixer_sd15_gpu.md)")
        return 0
    device = torch.device("cuda" if args.sd15_gpu else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    dtype = torch.float16 if args.sd15_gpu else torch.float32
    args.steps = args.steps or (20 if args.sd15_gpu else 8)
    args.size = args.size or (512 if args.sd15_gpu else 128)
    args.rank = args.rank or (32 if args.sd15_gpu else 8)
    with tempfile.TemporaryDirectory(prefix="bench-mixer-") as tmp:
        folder = Path(tmp)
        if args.sd15_gpu:
            base, loras = sd15_inputs(folder, args.rank, device)
            kind = "random-initialised real-size SD 1.5 (860 M UNet), fp16"
        else:
            base, loras = tiny_inputs(folder, args.rank)
            kind = "tiny SD 1.5-architecture model, fp32"
        env = environment(device, args, kind)
        result = run(base, loras, device=device, dtype=dtype, steps=args.steps, size=args.size, repeats=args.repeats,
                     worker=not args.no_worker, tmp=folder, threads=args.threads if device.type == "cpu" else None)
    title = "Mixer: strength change → new preview" + (" (real-size SD 1.5, GPU)" if args.sd15_gpu else "")
    text = markdown(env, result, title)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{stem}.json", json.dumps({"environment": env, **result}, indent=2) + "\n")
    atomic_write_text(args.out / f"{stem}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
