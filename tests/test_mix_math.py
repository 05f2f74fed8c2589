"""Acceptance 1 of the mixer: the merge and bake arithmetic, checked against direct computation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.errors import ConfigError, LoraFormatError
from studio.formats.lora_file import LoraModule
from studio.formats.reader import read_lora
from studio.mix.blocks import block_of, parse_weights
from studio.mix.merge import merge
from studio.mix.recipe import MixEntry, contributions, load_sources
from studio.mix.request import parse_entry
from tests.lora_maker import lora_metadata, random_lora, write_kohya

STRENGTHS = (0.8, -0.3)


@pytest.fixture(scope="module")
def loras(tiny_sd1, tmp_path_factory) -> tuple[Path, Path]:
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd1")
    d = tmp_path_factory.mktemp("mix-loras")
    a = random_lora(pipe, "sd1", rank=4, alpha=2.0, seed=1, conv=True, metadata=lora_metadata("sd1", "alpha"))
    b = random_lora(pipe, "sd1", rank=8, alpha=8.0, seed=2, metadata=lora_metadata("sd1", "beta"))
    return write_kohya(a, d / "A.safetensors"), write_kohya(b, d / "B.safetensors")


def _sources(loras, strengths=STRENGTHS):
    return load_sources([MixEntry(str(p), s) for p, s in zip(loras, strengths)])


def _direct_sum(loras, strengths=STRENGTHS) -> dict[str, torch.Tensor]:
    """Σ sᵢ·(αᵢ/rᵢ)·Bᵢ·Aᵢ per module, written out from the factors as the issue states it."""
    total: dict[str, torch.Tensor] = {}
    for path, s in zip(loras, strengths):
        for name, m in read_lora(path).modules.items():
            up, down = m.up.double().flatten(1), m.down.double().flatten(1)
            delta = s * (m.alpha / down.shape[0]) * (up @ down)
            total[name] = total.get(name, 0) + delta
    return total


def test_concat_merge_reproduces_weighted_sum(loras):
    result = merge(contributions(_sources(loras)), "sd1")
    expected = _direct_sum(loras)
    assert set(result.lora.modules) == set(expected)
    for name, want in expected.items():
        m = result.lora.modules[name]
        assert m.alpha == m.rank  # alpha = new rank: scale 1
        got = m.delta_weight().double().flatten(1)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), name
    ranks = {m.rank for m in result.lora.modules.values()}
    assert ranks == {4, 12}  # conv modules only in A (4), attention in both (4 + 8)
    assert result.overall_error == 0.0


def test_svd_at_full_rank_is_exact(loras):
    result = merge(contributions(_sources(loras)), "sd1", rank=12)
    expected = _direct_sum(loras)
    for name, want in expected.items():
        got = result.lora.modules[name].delta_weight().double().flatten(1)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), name
    assert result.overall_error < 1e-6
    assert all(r.rel_error < 1e-6 for r in result.reports)


def test_svd_error_at_lower_rank_matches_direct_computation(loras):
    rank = 3
    result = merge(contributions(_sources(loras)), "sd1", rank=rank)
    expected = _direct_sum(loras)
    lost = total = 0.0
    for report in result.reports:
        want = expected[report.name]
        got = result.lora.modules[report.name].delta_weight().double().flatten(1)
        direct = float((want - got).norm() / want.norm())
        assert report.rank == rank
        assert math.isclose(report.rel_error, direct, rel_tol=1e-4, abs_tol=1e-6), report.name
        # Eckart–Young: the truncation error is exactly the discarded singular values
        s = torch.linalg.svdvals(want)
        assert math.isclose(direct, float(s[rank:].norm() / s.norm()), rel_tol=1e-4)
        lost += float((want - got).norm()) ** 2
        total += float(want.norm()) ** 2
    assert math.isclose(result.overall_error, math.sqrt(lost / total), rel_tol=1e-4)
    assert 0.05 < result.overall_error < 1.0


def test_svd_handles_loha_and_lokr_modules():
    gen = torch.Generator().manual_seed(0)
    loha = LoraModule(name="lora_unet_x", algo="loha", alpha=2.0, params={
        "hada_w1_a": torch.randn(16, 2, generator=gen), "hada_w1_b": torch.randn(2, 12, generator=gen),
        "hada_w2_a": torch.randn(16, 2, generator=gen), "hada_w2_b": torch.randn(2, 12, generator=gen)})
    lokr = LoraModule(name="lora_unet_x", algo="lokr", params={
        "lokr_w1": torch.randn(4, 3, generator=gen), "lokr_w2": torch.randn(4, 4, generator=gen)})
    want = 0.5 * loha.delta_weight() - 1.5 * lokr.delta_weight()
    result = merge({"lora_unet_x": [(loha, 0.5), (lokr, -1.5)]}, "sd1")  # concat mode: SVD at full rank
    got = result.lora.modules["lora_unet_x"].delta_weight()
    assert torch.allclose(got, want, atol=1e-4)
    low = merge({"lora_unet_x": [(loha, 0.5), (lokr, -1.5)]}, "sd1", rank=2)
    direct = float((want - low.lora.modules["lora_unet_x"].delta_weight()).norm() / want.norm())
    assert math.isclose(low.reports[0].rel_error, direct, rel_tol=1e-4)


def test_strengths_unet_te_and_block_weights(loras):
    a = read_lora(loras[0])
    te_name = next(n for n in a.modules if n.startswith("lora_te_"))
    in4 = next(n for n in a.modules if block_of(n) == "IN04")
    out3 = next(n for n in a.modules if block_of(n) == "OUT03")
    entry = MixEntry(str(loras[0]), 0.8, te=0.25, blocks=tuple(parse_weights("OUTD", "sd1").items()))
    assert entry.module_strength(te_name) == 0.25  # BASE is 1 in OUTD; te strength replaces the global one
    assert entry.module_strength(in4) == 0.0
    assert entry.module_strength(out3) == 0.8
    assert MixEntry(str(loras[0]), 0.8, enabled=False).module_strength(out3) == 0.0
    # lora-block-weight widens a 17-list to 26 with 1 for blocks without attention
    assert parse_weights("0," * 16 + "0", "sd1").get("IN03", 1.0) == 1.0
    with pytest.raises(ConfigError, match="block weights"):
        parse_weights("1,2,3", "sd1")


def test_block_ids_follow_sd_scripts():
    assert block_of("lora_unet_down_blocks_0_attentions_1_proj_in") == "IN02"
    assert block_of("lora_unet_down_blocks_1_downsamplers_0_conv") == "IN06"
    assert block_of("lora_unet_mid_block_attentions_0_proj_out") == "MID"
    assert block_of("lora_unet_up_blocks_3_attentions_2_proj_out") == "OUT11"
    assert block_of("lora_unet_up_blocks_0_upsamplers_0_conv") == "OUT02"
    assert block_of("lora_unet_input_blocks_7_1_proj_in") == "IN07"  # SDXL, SGM names
    assert block_of("lora_te2_text_model_encoder_layers_0_mlp_fc1") == "BASE"
    assert block_of("lora_unet_time_embedding_linear_1") is None


def test_parse_entry_cli_syntax():
    e, blocks = parse_entry("C:/loras/a.safetensors:0.8:te=0.5:blocks=OUTD")
    assert (e.path, e.strength, e.te, e.unet, blocks) == ("C:/loras/a.safetensors", 0.8, 0.5, None, "OUTD")
    e, _ = parse_entry("b.safetensors:-0.3")
    assert (e.path, e.strength) == ("b.safetensors", -0.3)
    assert parse_entry("plain.safetensors")[0].strength == 1.0


def test_other_family_is_refused(loras, tmp_path):
    from studio.mix.recipe import mix_family
    from studio.models.tiny import build_tiny_pipeline

    xl = random_lora(build_tiny_pipeline("sd2"), "sd2", metadata=lora_metadata("sd2", "sd2-lora"))
    path = write_kohya(xl, tmp_path / "sd2.safetensors")
    sources = load_sources([MixEntry(str(loras[0]), 1.0), MixEntry(str(path), 1.0)])
    with pytest.raises(LoraFormatError, match=r"sd2\.safetensors is a LoRA for SD 2\.x.*A\.safetensors is SD 1\.x"):
        mix_family(sources)


# --------------------------------------------------------------------------------------------------
# baking


def _render_diffusers_with_adapters(model: Path, loras, strengths) -> np.ndarray:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    names = []
    for i, path in enumerate(loras):
        pipe.load_lora_weights(str(path), adapter_name=f"l{i}")
        names.append(f"l{i}")
    pipe.set_adapters(names, adapter_weights=list(strengths))
    out = pipe(prompt="photo, thing 1, red", num_inference_steps=3, height=64, width=64, guidance_scale=5.0,
               generator=torch.Generator(device="cpu").manual_seed(7))
    return np.asarray(out.images[0], dtype=np.int16)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_baked_checkpoint_renders_like_base_plus_loras(tiny_sd1, tmp_path):
    """Independent reference: diffusers' own LoRA loading (peft adapters at those strengths) on the base model."""
    from studio.mix.bake import bake
    from studio.mix.preview import PreviewSession, RenderRequest
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd1")
    paths = [write_kohya(random_lora(pipe, "sd1", rank=4, alpha=2.0, seed=s, scale=0.35), tmp_path / f"L{s}.safetensors")
             for s in (11, 12)]
    sources = load_sources([MixEntry(str(p), s) for p, s in zip(paths, STRENGTHS)])
    result = bake(tiny_sd1, sources, tmp_path / "baked.safetensors", dtype="fp32")
    assert result.layout == "single-file" and result.layers_changed > 0

    request = RenderRequest(prompt="photo, thing 1, red", steps=3, width=64, height=64, guidance=5.0, seed=7)
    baked = np.asarray(PreviewSession.open(result.path, device="cpu").render(request), dtype=np.int16)
    reference = _render_diffusers_with_adapters(tiny_sd1, paths, STRENGTHS)
    base = np.asarray(PreviewSession.open(tiny_sd1, device="cpu").render(request), dtype=np.int16)
    assert np.abs(base - reference).mean() > 5  # the LoRAs change the image visibly …
    assert np.abs(baked - reference).max() <= 2  # … and the baked checkpoint reproduces that change


def test_bake_matches_live_preview_and_records_sources(tiny_sd1, loras, tmp_path):
    from safetensors import safe_open

    from studio.formats.inspect import mix_sources
    from studio.mix.bake import bake
    from studio.mix.preview import PreviewSession, RenderRequest

    sources = _sources(loras)
    out = bake(tiny_sd1, sources, tmp_path / "baked.safetensors", dtype="fp32").path
    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
    recorded = mix_sources(meta)
    assert [(s.name, s.strength) for s in recorded] == [("alpha", 0.8), ("beta", -0.3)]
    assert recorded[0].sha256 == sources[0].sha256
    assert meta["modelspec.merged_from"] == "tiny-sd1, alpha, beta"

    entries = tuple(MixEntry(str(p), s) for p, s in zip(loras, STRENGTHS))
    request = RenderRequest(prompt="a red thing", steps=2, width=64, height=64, seed=3, loras=entries)
    live = PreviewSession.open(tiny_sd1, device="cpu")
    preview = np.asarray(live.render(request), dtype=np.int16)
    baked = np.asarray(PreviewSession.open(out, device="cpu").render(RenderRequest(
        prompt="a red thing", steps=2, width=64, height=64, seed=3)), dtype=np.int16)
    assert np.abs(preview - baked).max() <= 1
    live.close()
    restored = np.asarray(live.render(RenderRequest(prompt="a red thing", steps=2, width=64, height=64, seed=3)),
                          dtype=np.int16)
    assert np.abs(restored - preview).mean() > 1  # restoring really removed the LoRAs


def test_bake_refuses_mismatched_lora(tiny_sd1, tmp_path):
    from studio.formats.kohya import save_lora_file
    from studio.formats.lora_file import LoraFile
    from studio.mix.bake import bake

    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    lf = LoraFile(family="sd1", modules={
        name: LoraModule(name=name, down=torch.ones(2, 768), up=torch.ones(32, 2), alpha=1.0),
        "lora_unet_not_a_layer": LoraModule(name="lora_unet_not_a_layer", down=torch.ones(2, 4), up=torch.ones(4, 2)),
    })
    path = save_lora_file(lf, tmp_path / "big.safetensors", dtype="fp32")
    with pytest.raises(LoraFormatError) as err:
        bake(tiny_sd1, load_sources([MixEntry(str(path), 1.0)]), tmp_path / "out.safetensors")
    text = str(err.value)
    assert "big.safetensors does not fit" in text and "`lora_unet_not_a_layer`" in text
    assert f"`{name}` (LoRA ΔW 32×768, model weight 32×32)" in text
    assert not (tmp_path / "out.safetensors").exists()


def test_dora_needs_the_base_and_follows_comfyui_math(tiny_sd1, tmp_path, capsys):
    """DoRA rescales W + ΔW per input column to `dora_scale` (LyCORIS/ComfyUI); strength interpolates."""
    from studio.cli import main
    from studio.formats.kohya import save_lora_file
    from studio.formats.lora_file import LoraFile
    from studio.mix.patch import WeightPatcher
    from studio.mix.targets import model_targets
    from studio.models.load import load_components

    name = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q"
    gen = torch.Generator().manual_seed(0)
    module = LoraModule(name=name, down=torch.randn(2, 64, generator=gen) * 0.1,
                        up=torch.randn(64, 2, generator=gen) * 0.1, alpha=1.0,
                        dora_scale=torch.rand(1, 64, generator=gen) + 0.5)
    path = save_lora_file(LoraFile(family="sd1", modules={name: module}), tmp_path / "dora.safetensors", dtype="fp32")

    components = load_components(tiny_sd1)
    targets = model_targets(components.unet, components.text_encoders, "sd1")
    w0 = targets[name].module.weight.detach().clone()
    combined = w0 + module.delta_weight()
    want = w0 + 0.6 * (combined * (module.dora_scale / combined.norm(dim=0, keepdim=True)) - w0)
    WeightPatcher(targets).apply({name: [(read_lora(path).modules[name], 0.6)]})
    assert torch.allclose(targets[name].module.weight, want, atol=1e-6)

    out = tmp_path / "merged.safetensors"
    assert main(["mix", f"{path}:0.6", "-o", str(out)]) == 2
    assert "DoRA module" in capsys.readouterr().err and not out.exists()
    assert main(["mix", f"{path}:0.6", "--base", str(tiny_sd1), "--dtype", "fp32", "-o", str(out)]) == 0
    merged = read_lora(out).modules[name]
    assert torch.allclose(merged.delta_weight(), want - w0, atol=1e-5)


def test_output_axis_dora_is_normalised_by_the_base_rows_as_comfyui_does():
    """An out × 1 dora_scale (our exports, LyCORIS wd_on_output) divides by the base weight's row norms."""
    from studio.mix.delta import module_delta

    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(8, 6, generator=gen)
    module = LoraModule(name="lora_unet_x", down=torch.randn(2, 6, generator=gen), up=torch.randn(8, 2, generator=gen),
                        alpha=2.0, dora_scale=torch.rand(8, 1, generator=gen) + 0.5)
    combined = w0 + module.delta_weight()
    want = 0.7 * (combined * module.dora_scale / w0.norm(dim=1, keepdim=True) - w0)
    assert torch.allclose(module_delta(module, 0.7, weight=w0), want, atol=1e-6)
    wrong = 0.7 * (combined * module.dora_scale / combined.norm(dim=1, keepdim=True) - w0)
    assert not torch.allclose(want, wrong, atol=1e-3)  # the two rules really differ here


def test_cli_refuses_overwriting_a_source(loras, capsys):
    from studio.cli import main

    assert main(["mix", f"{loras[0]}:0.5", f"{loras[1]}", "-o", str(loras[1])]) == 2
    assert "is one of the input files" in capsys.readouterr().err
