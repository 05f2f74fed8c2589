"""Issue 16 C: the base family of LyCORIS LoHa / LoKr (and DoRA) files, read from each network type's own tensor
shapes. SD 1.5's `proj_in` is a 1×1 conv; LoHa and low-rank LoKr store its factors 2-D, which once read as a
linear `proj_in` (SD 2.x evidence), so an SD 1.5 LoHa was refused in a mix with an SD 1.5 LoRA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio.formats.family import ModuleEvidence, detect_family, module_geometry
from studio.formats.peek import peek_lora
from studio.formats.reader import read_lora, read_lora_report
from studio.mix.recipe import MixEntry, load_sources, mix_family
from tests.lora_maker import lora_metadata, lycoris_metadata, random_lora, write_kohya, write_lycoris


@pytest.fixture(scope="module")
def sd1_pipe():
    from studio.models.tiny import build_tiny_pipeline

    return build_tiny_pipeline("sd1")


def real_size_sd15():
    """SD 1.5's UNet and text encoder at their real sizes, weights on the meta device (no memory)."""
    from tests.model_shapes import build_empty

    parts = build_empty("sd1")
    return SimpleNamespace(unet=parts["unet"], text_encoder=parts["text_encoder"])


def test_geometry_of_every_network_type():
    # LoRA / LoCon: the down factor keeps the layer's dimensionality
    g = module_geometry({"down": (4, 320, 1, 1), "up": (320, 4, 1, 1)})
    assert (g.in_features, g.conv) == (320, True)
    g = module_geometry({"down": (4, 768), "up": (320, 4)})
    assert (g.in_features, g.conv) == (768, False)
    # LoHa: 2-D factors whatever the layer, the kernel folded into the columns; a Tucker core proves a conv
    g = module_geometry({"hada_w1_a": (320, 4), "hada_w1_b": (4, 320), "hada_w2_a": (320, 4), "hada_w2_b": (4, 320)})
    assert (g.in_features, g.conv) == (320, None)
    g = module_geometry({"hada_w1_a": (4, 320), "hada_w1_b": (4, 320), "hada_t1": (4, 4, 3, 3)})
    assert g.conv is True
    # LoKr: in = columns of w1 × columns of w2; a whole conv w2 is 4-D, a low-rank one 2-D
    g = module_geometry({"lokr_w1": (4, 4), "lokr_w2_a": (80, 4), "lokr_w2_b": (4, 192)})
    assert (g.in_features, g.conv) == (768, None)
    g = module_geometry({"lokr_w1": (4, 4), "lokr_w2": (80, 80, 1, 1)})
    assert (g.in_features, g.conv) == (320, True)
    # DoRA magnitudes: LyCORIS' dora_scale is 4-D on a conv, 2-D on a linear; peft's vector says nothing
    assert module_geometry({"hada_w1_b": (4, 320), "dora_scale": (320, 1, 1, 1)}).conv is True
    assert module_geometry({"hada_w1_b": (4, 320), "dora_scale": (320, 1)}).conv is False
    assert module_geometry({"down": (4, 320), "magnitude": (320,)}).conv is False


def test_two_d_factors_of_a_conv_proj_in_are_no_sd2_evidence():
    proj = "down_blocks.1.attentions.0.proj_in"
    to_k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    loha = [ModuleEvidence("unet", proj, parts={"hada_w1_a": (320, 4), "hada_w1_b": (4, 320)}),
            ModuleEvidence("unet", to_k, parts={"hada_w1_a": (320, 4), "hada_w1_b": (4, 768)})]
    guess = detect_family({"ss_base_model_version": "sd_v1"}, loha)
    assert (guess.family, guess.conflict) == ("sd1", "")
    assert "cross-attention width 768" in guess.evidence
    lokr = [ModuleEvidence("unet", to_k, parts={"lokr_w1": (4, 4), "lokr_w2_a": (80, 4), "lokr_w2_b": (4, 256)})]
    assert detect_family({}, lokr).family == "sd2"  # 4 × 256 = 1024: SD 2.x's cross-attention width
    # the older one-shape form still works for LoRA
    assert detect_family({}, [ModuleEvidence("unet", to_k, {"down": (4, 768)})]).family == "sd1"


@pytest.mark.parametrize("algo", ["loha", "lokr"])
@pytest.mark.parametrize("dora", [False, True])
def test_tiny_sd15_lycoris_file_is_sd1_and_mixes_with_an_sd1_lora(tmp_path, sd1_pipe, algo, dora):
    assert sd1_pipe.unet.config.use_linear_projection is False  # proj_in is a 1×1 conv, as in SD 1.5
    path = write_lycoris(sd1_pipe, "sd1", algo, tmp_path / f"{algo}.safetensors",
                         metadata=lycoris_metadata("sd1", algo), dora=dora)
    report = read_lora_report(path)
    assert report.lora.family == "sd1"
    assert not any("keys say" in w for w in report.warnings), report.warnings
    assert {m.algo for m in report.lora.modules.values()} == {algo}
    assert peek_lora(path).family == "sd1"
    lora = write_kohya(random_lora(sd1_pipe, "sd1", metadata=lora_metadata("sd1", "plain")),
                       tmp_path / "plain.safetensors")
    sources = load_sources([MixEntry(str(lora), 1.0), MixEntry(str(path), 0.5)])
    assert mix_family(sources) == "sd1"
    if dora:  # a DoRA module's change needs the base weights: mixing it is the baker's job, tested elsewhere
        return
    from studio.mix.merge import merge
    from studio.mix.recipe import contributions

    merged = merge(contributions(sources), "sd1")
    proj = next(n for n in merged.lora.modules if n.endswith("attentions_0_proj_in"))
    assert merged.lora.modules[proj].delta_weight().abs().sum() > 0


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
@pytest.mark.parametrize("algo", ["loha", "lokr"])
def test_real_size_sd15_lycoris_without_metadata_is_sd1_from_its_keys(tmp_path, algo):
    pipe = real_size_sd15()
    path = write_lycoris(pipe, "sd1", algo, tmp_path / f"{algo}.safetensors", rank=4)
    report = read_lora_report(path)
    assert report.lora.family == "sd1"
    assert "cross-attention width 768" in report.guess.evidence
    assert "proj_in is a linear layer" not in report.guess.evidence
    assert peek_lora(path).family == "sd1"
