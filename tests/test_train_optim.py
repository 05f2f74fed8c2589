"""Optimizers, LoRA+, learning-rate schedules, warm-up, gradient clipping and EMA."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from studio.config import OptimizerConfig, ScheduleConfig
from studio.errors import ConfigError
from studio.events import Checkpoint, Finished, Log
from studio.train.ema import LoraEMA, ema_decay_at
from studio.train.engine import run_training
from studio.train.optimizers import evaluation_weights, make_optimizer, param_groups
from studio.train.schedules import make_lr_scheduler, warmup_steps
from tests.conftest import tiny_config, train_until


def _peft_model(type_="lora"):
    from peft import LoHaConfig, LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    cfg = (LoraConfig(r=4, lora_alpha=4, target_modules=["0", "2"], init_lora_weights="gaussian") if type_ == "lora"
           else LoHaConfig(r=4, alpha=4, target_modules=["0", "2"]))
    return get_peft_model(model, cfg)


@pytest.mark.parametrize("name", ["adamw", "adamw8bit", "lion", "prodigy", "adafactor", "schedule_free_adamw"])
def test_every_optimizer_lowers_the_loss(name):
    model = _peft_model()
    lr = 1.0 if name == "prodigy" else 3e-3
    opt = make_optimizer([model], OptimizerConfig(name=name, unet_lr=lr, weight_decay=0.0), fused=False,
                         warn=pytest.fail)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    y = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], (name, losses[0], losses[-1])
    expected = {"adamw8bit": "AdamW8bit", "lion": "Lion", "prodigy": "Prodigy", "adafactor": "Adafactor",
                "schedule_free_adamw": "AdamWScheduleFree", "adamw": "AdamW"}[name]
    assert type(opt).__name__ == expected


def test_8bit_adamw_falls_back_with_a_message_when_bitsandbytes_is_missing(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name.startswith("bitsandbytes"):
            raise ImportError("No module named 'bitsandbytes'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    notes = []
    opt = make_optimizer([_peft_model()], OptimizerConfig(name="adamw8bit"), fused=False, warn=notes.append)
    assert type(opt) is torch.optim.AdamW
    assert len(notes) == 1 and "8-bit AdamW is not available" in notes[0] and "bitsandbytes" in notes[0]


def test_lora_plus_gives_the_b_matrices_a_higher_learning_rate():
    model = _peft_model()
    groups = param_groups([model], OptimizerConfig(unet_lr=1e-4, lora_plus_ratio=16))
    names = {id(p): n for n, p in model.named_parameters()}
    assert [g["lr"] for g in groups] == [1e-4, 16e-4]
    assert all("lora_A" in names[id(p)] for p in groups[0]["params"])
    assert all("lora_B" in names[id(p)] for p in groups[1]["params"]) and len(groups[1]["params"]) == 2
    plain = param_groups([model], OptimizerConfig(unet_lr=1e-4))
    assert len(plain) == 1 and len(plain[0]["params"]) == 4
    with pytest.raises(ConfigError, match="LoRA\\+ needs LoRA up"):
        param_groups([_peft_model("loha")], OptimizerConfig(lora_plus_ratio=16))


def _lrs(sched: ScheduleConfig, steps: int, lr: float = 1.0, schedule_free: bool = False) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_lr_scheduler(opt, sched, 1, schedule_free=schedule_free)
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        opt.step()
        scheduler.step()
    return out


def test_schedules_follow_their_formulas():
    n = 100
    restarts = _lrs(ScheduleConfig(max_steps=n, lr_scheduler="cosine_with_restarts", lr_cycles=2), n)
    for t in range(n):
        assert restarts[t] == pytest.approx(0.5 * (1 + math.cos(math.pi * ((2 * t / n) % 1.0))), abs=1e-9)
    assert restarts[50] == pytest.approx(1.0) and restarts[49] < 0.01  # the hard restart half-way
    poly = _lrs(ScheduleConfig(max_steps=n, lr_scheduler="polynomial", lr_power=2.0), n)
    for t in range(n):
        assert poly[t] == pytest.approx((1.0 - 1e-7) * (1 - t / n) ** 2 + 1e-7, abs=1e-9)
    warm = _lrs(ScheduleConfig(max_steps=n, lr_scheduler="constant", warmup_ratio=0.1), n)
    assert warmup_steps(ScheduleConfig(max_steps=n, warmup_ratio=0.1, warmup_steps=50)) == 10  # ratio wins
    assert warm[:11] == pytest.approx([t / 10 for t in range(10)] + [1.0]) and set(warm[10:]) == {1.0}
    cosine = _lrs(ScheduleConfig(max_steps=n, lr_scheduler="cosine", warmup_steps=20), n)
    assert cosine[10] == pytest.approx(0.5) and cosine[60] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert set(_lrs(ScheduleConfig(max_steps=n, lr_scheduler="cosine", warmup_steps=20), n,
                    schedule_free=True)) == {1.0}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_gradient_clipping_caps_the_norm_the_optimizer_sees(tiny_sd1, image_folder, tmp_path, monkeypatch):
    from studio.train import engine

    norms: list[float] = []
    original = engine.make_optimizer

    def recording(*args, **kwargs):
        opt = original(*args, **kwargs)

        def measure(optimizer, *_):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

        opt.register_step_pre_hook(measure)
        return opt

    monkeypatch.setattr(engine, "make_optimizer", recording)
    for max_norm in (0.0, 1e-3):
        norms.clear()
        cfg = tiny_config(tiny_sd1, image_folder, tmp_path / str(max_norm), schedule={"max_steps": 3},
                          optimizer={"max_grad_norm": max_norm})
        assert isinstance(list(run_training(cfg))[-1], Finished)
        assert len(norms) == 3
        if max_norm:
            assert max(norms) <= 1e-3 * 1.001, norms
        else:
            assert min(norms) > 1e-2, norms  # unclipped gradients are far larger


def test_ema_follows_its_formula_and_swaps_in_and_out():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = LoraEMA([p], decay=0.9)
    expected = torch.zeros(3)
    for t in range(30):
        with torch.no_grad():
            p.add_(1.0)
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))
        assert ema_decay_at(0.9, t) == d
        expected = d * expected + (1 - d) * p.detach()
    assert torch.allclose(ema.shadow[0], expected)
    before = p.detach().clone()
    with ema.applied():
        assert torch.equal(p.detach(), ema.shadow[0])
    assert torch.equal(p.detach(), before)
    state = ema.state_dict()
    other = LoraEMA([torch.nn.Parameter(torch.zeros(3))], decay=0.9)
    other.load_state_dict(state)
    assert torch.equal(other.shadow[0], ema.shadow[0]) and other.updates == 30


def test_ema_weights_are_exported_and_checkpointed(tiny_sd1, image_folder, tmp_path):
    cfg = tiny_config(tiny_sd1, image_folder, tmp_path, schedule={"max_steps": 4},
                      optimizer={"ema_decay": 0.5}, output={"dtype": "fp32", "directory": str(tmp_path)},
                      network={"rank": 2, "alpha": 2.0})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished)
    ckpt = Path([e for e in events if isinstance(e, Checkpoint)][-1].path)
    raw = load_file(str(ckpt / "lora_unet.safetensors"))
    ema = load_file(str(ckpt / "extra" / "ema.safetensors"))
    assert int(ema["updates"]) == 4
    raw_ups = [k for k in raw if k.endswith("lora_B.weight")]
    with safe_open(events[-1].outputs[-1], "pt") as fh:
        exported = {k: fh.get_tensor(k) for k in fh.keys()}
    # the export holds the EMA weights: each up matrix is one of the EMA shadows, not the raw trained weights
    from studio.formats.names import kohya_name_for

    shadows = [ema[k] for k in ema if k.startswith("shadow.")]
    assert len(raw_ups) == 192
    # up matrices start at zero and move only where gradient reached them: at 64 px the mid-block's
    # self-attention sees one token, so its to_q/to_k stay zero in both the raw and the EMA weights
    moved = [k for k in raw_ups if raw[k].abs().max() > 0]
    assert len(moved) >= 0.8 * len(raw_ups)
    for key in raw_ups:
        up = exported[f"{kohya_name_for('unet', key.split('.lora_B.')[0], 'sd1')}.lora_up.weight"]
        if key in moved:
            assert not torch.allclose(up, raw[key])  # the raw trained weights were not what got exported
            assert any(s.shape == up.shape and torch.equal(s, up) for s in shadows)
        else:
            assert not up.abs().max() > 0


def test_schedule_free_exports_its_averaged_weights_without_disturbing_training(tiny_sd1, image_folder, tmp_path):
    model = _peft_model()
    opt = make_optimizer([model], OptimizerConfig(name="schedule_free_adamw", unet_lr=1e-2), fused=False)
    params = [p for p in model.parameters() if p.requires_grad]
    x = torch.randn(8, 16)
    for _ in range(5):
        model(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    y = [p.detach().clone() for p in params]
    with evaluation_weights(opt, params):
        x_weights = [p.detach().clone() for p in params]
    assert any(not torch.equal(a, b) for a, b in zip(x_weights, y))  # x is not y
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, y))  # y restored bit for bit
    z = [opt.state[p]["z"] for p in params]
    beta1 = opt.param_groups[0]["betas"][0]
    for xw, yw, zw in zip(x_weights, y, z):
        assert torch.allclose(xw, torch.lerp(yw, zw, 1 - 1 / beta1), atol=1e-6)  # y = (1-β)z + βx

    cfg = tiny_config(tiny_sd1, image_folder, tmp_path, schedule={"max_steps": 2, "lr_scheduler": "cosine"},
                      optimizer={"name": "schedule_free_adamw"})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    assert any(isinstance(e, Log) and "makes its own schedule" in e.text for e in events)
    with safe_open(events[-1].outputs[-1], "pt") as fh:
        assert fh.metadata()["ss_optimizer"] == "schedulefree.AdamWScheduleFree"


@pytest.mark.slow
def test_resume_is_exact_with_ema_schedule_free_lora_plus_and_pissa(tiny_sd1, image_folder, tmp_path):
    from studio.events import Progress
    
    def config(out):
        return tiny_config(tiny_sd1, image_folder, out, network={"type": "locon", "rank": 2, "init": "pissa"},
                           optimizer={"name": "schedule_free_adamw", "ema_decay": 0.8, "lora_plus_ratio": 4.0},
                           schedule={"max_steps": 4, "warmup_steps": 2},
                           output={"save_every_n_steps": 2, "dtype": "fp32", "directory": str(out)})

    straight = list(run_training(config(tmp_path / "a")))
    assert isinstance(straight[-1], Finished), straight[-1]
    cfg = config(tmp_path / "b")
    first = train_until(cfg, 3)
    checkpoint = Path([e for e in first if isinstance(e, Checkpoint)][0].path)
    assert checkpoint.name == "checkpoint-0000002" and (checkpoint / "extra" / "ema.safetensors").is_file()
    resumed = list(run_training(cfg, resume_from=checkpoint))
    assert isinstance(resumed[-1], Finished), resumed[-1]
    losses = lambda events: {e.step: e.loss for e in events if isinstance(e, Progress)}  # noqa: E731
    assert losses(resumed) == {s: v for s, v in losses(straight).items() if s > 2}
    with safe_open(straight[-1].outputs[-1], "pt") as a, safe_open(resumed[-1].outputs[-1], "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
