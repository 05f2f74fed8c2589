"""Our training step against a minimal diffusers + peft loop, side by side in one process.

Both train the same tiny SD 1.5-architecture model with the same LoRA (rank, alpha, targets), batch,
resolution and optimizer (AdamW, grad-norm clipping at 1.0). The steps are interleaved — one of ours,
one of the reference — so load from other processes on these shared CPUs hits both alike; we report
medians and their ratio. Two references:

- `reference_cached`: latents and text embeddings computed once, like ours (equal work: the ratio is
  our overhead; target ≤ 1.10).
- `reference_recipe`: VAE and text encoder run every step, as diffusers' example script does (what a
  user of a minimal script actually gets).

Usage: python bench/train_step.py [--steps 30] [--resolution 64] [--batch 2]
Writes bench/results/train_step.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.config import ProjectConfig  # noqa: E402
from studio.events import Progress  # noqa: E402
from studio.libraries import quiet_libraries  # noqa: E402
from studio.models.tiny import save_tiny_model  # noqa: E402
from studio.train.engine import run_training  # noqa: E402
from studio.train.targets import unet_targets  # noqa: E402

RANK, ALPHA, LR = 16, 8.0, 1e-4


class ReferenceLoop:
    """The minimal loop a user would write from the diffusers docs: no engine, no events."""

    def __init__(self, model: Path, images: list[Path], captions: list[str], resolution: int, batch: int,
                 cached: bool) -> None:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from peft import LoraConfig
        from transformers import CLIPTextModel, CLIPTokenizer

        from studio.dataset.images import open_checked, to_rgb
        from studio.train.buckets import fit_to_bucket

        self.tok = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
        self.te = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").requires_grad_(False)
        self.vae = AutoencoderKL.from_pretrained(model, subfolder="vae").requires_grad_(False)
        self.unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet").requires_grad_(False)
        self.sched = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
        torch.manual_seed(0)
        self.unet.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=unet_targets("transformer")))
        self.params = [p for p in self.unet.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=LR, weight_decay=1e-2)
        self.unet.train()
        import numpy as np

        crops = [fit_to_bucket(to_rgb(open_checked(p)), resolution, resolution)[0] for p in images]
        pix = [torch.from_numpy(np.asarray(c, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1) for c in crops]
        self.pixels = torch.stack(pix)
        self.ids = self.tok(captions, padding="max_length", max_length=77, truncation=True,
                            return_tensors="pt").input_ids
        self.batch, self.cached, self.i = batch, cached, 0
        if cached:
            with torch.no_grad():
                self.latents = self.vae.encode(self.pixels).latent_dist.sample() * self.vae.config.scaling_factor
                self.hidden = self.te(self.ids)[0]

    def step(self) -> float:
        idx = [(self.i + k) % len(self.pixels) for k in range(self.batch)]
        self.i += self.batch
        if self.cached:
            latents, hidden = self.latents[idx], self.hidden[idx]
        else:
            with torch.no_grad():
                latents = self.vae.encode(self.pixels[idx]).latent_dist.sample() * self.vae.config.scaling_factor
                hidden = self.te(self.ids[idx])[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (latents.shape[0],))
        pred = self.unet(self.sched.add_noise(latents, noise, t), t, encoder_hidden_states=hidden).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "model"
        save_tiny_model(model, "sd1")
        data = tmp / "data"
        data.mkdir()
        from PIL import Image

        gen = torch.Generator().manual_seed(0)
        captions = []
        for i in range(8):
            arr = (torch.rand(96, 112, 3, generator=gen) * 255).to(torch.uint8).numpy()
            Image.fromarray(arr).save(data / f"{i}.png")
            captions.append(f"photo, object {i}")
            (data / f"{i}.txt").write_text(captions[-1])
        images = sorted(data.glob("*.png"))

        total = args.warmup + args.steps
        cfg = ProjectConfig()
        cfg = cfg.with_section("dataset", folders=(str(data),), resolution=args.resolution)
        cfg = cfg.with_section("model", path=str(model))
        cfg = cfg.with_section("network", rank=RANK, alpha=ALPHA)
        cfg = cfg.with_section("optimizer", unet_lr=LR)
        cfg = cfg.with_section("schedule", max_steps=total, batch_size=args.batch)
        cfg = cfg.with_section("output", directory=str(tmp / "out"), keep_checkpoints=1)
        ours = run_training(cfg)

        def our_step() -> None:
            for event in ours:
                if isinstance(event, Progress):
                    return
            raise RuntimeError("our run ended early")

        # advance ours through set-up (model load, latent caching) before timing anything
        cached = ReferenceLoop(model, images, captions, args.resolution, args.batch, cached=True)
        recipe = ReferenceLoop(model, images, captions, args.resolution, args.batch, cached=False)
        times: dict[str, list[float]] = {"ours": [], "reference_cached": [], "reference_recipe": []}
        for i in range(total):
            for name, fn in (("ours", our_step), ("reference_cached", cached.step),
                             ("reference_recipe", recipe.step)):
                dt = timed(fn)
                if i >= args.warmup:
                    times[name].append(dt)
        for _ in ours:  # let ours finish (final save) so nothing is left half-done
            pass

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "train_step",
        "model": "tiny SD 1.5-architecture (random init)",
        "resolution": args.resolution, "batch": args.batch, "rank": RANK, "steps_timed": args.steps,
        "median_step_s": med,
        "ratio_ours_to_reference_cached": med["ours"] / med["reference_cached"],
        "ratio_ours_to_reference_recipe": med["ours"] / med["reference_recipe"],
        "target": "ours <= 1.10 x reference_cached",
        "passed": med["ours"] / med["reference_cached"] <= 1.10,
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "cuda": torch.cuda.is_available()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_step.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Training step: LoRA Studio vs a minimal diffusers + peft loop",
        "",
        f"Tiny SD 1.5-architecture model, {args.resolution} px, batch {args.batch}, LoRA rank {RANK}, AdamW, "
        f"{args.steps} interleaved steps after {args.warmup} warm-up, on {result['machine']['cpu_threads']} CPU "
        f"threads ({result['when']}).",
        "",
        "| loop | median step (ms) | ours ÷ this |",
        "|---|---:|---:|",
        f"| LoRA Studio engine | {med['ours'] * 1000:.1f} | 1.00 |",
        f"| reference, cached latents + text (equal work) | {med['reference_cached'] * 1000:.1f} | "
        f"{result['ratio_ours_to_reference_cached']:.3f} |",
        f"| reference, VAE + text encoder every step (diffusers recipe) | {med['reference_recipe'] * 1000:.1f} | "
        f"{result['ratio_ours_to_reference_recipe']:.3f} |",
        "",
        f"Target: ours ≤ 1.10 × the equal-work reference → **{'met' if result['passed'] else 'NOT met'}**.",
        "",
    ]
    (args.out / "train_step.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
