"""Import of every LoRA layout into `LoraFile`, family detection, and what `lora-studio inspect` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from studio.errors import LoraFormatError, UnsafeFileError
from studio.formats.family import ModuleEvidence, detect_family
from studio.formats.lora_file import LoraFile, LoraModule
from studio.formats.reader import read_lora, read_lora_report
from tests.lora_maker import lora_metadata, random_lora, write_kohya, write_old_diffusers, write_peft


@pytest.fixture(scope="module")
def sd1():
    from studio.models.tiny import build_tiny_pipeline

    return build_tiny_pipeline("sd1")


@pytest.fixture(scope="module")
def sdxl():
    from studio.models.tiny import build_tiny_pipeline

    return build_tiny_pipeline("sdxl")


def _same_deltas(a: LoraFile, b: LoraFile, names=None) -> None:
    names = set(a.modules) if names is None else names
    assert names <= set(b.modules), sorted(names - set(b.modules))[:3]
    for n in names:
        assert torch.allclose(a.modules[n].delta_weight(), b.modules[n].delta_weight(), atol=1e-6), n


def test_kohya_lora_and_locon_round_trip(sd1, tmp_path):
    lf = random_lora(sd1, "sd1", rank=4, alpha=2.0, conv=True, metadata=lora_metadata("sd1", "round"))
    path = write_kohya(lf, tmp_path / "k.safetensors")
    back = read_lora(path)
    assert back.family == "sd1" and read_lora_report(path).layouts == ("kohya",)
    assert set(back.modules) == set(lf.modules)
    _same_deltas(lf, back)
    assert back.ranks() == [4] and back.alphas() == [2.0]
    conv = back.modules["lora_unet_down_blocks_0_resnets_0_conv1"]
    assert conv.down.shape[2:] == (3, 3) and conv.up.shape[2:] == (1, 1)


def test_kohya_locon_with_tucker_mid(tmp_path):
    gen = torch.Generator().manual_seed(0)
    name = "lora_unet_down_blocks_0_resnets_0_conv1"
    tensors = {f"{name}.lora_down.weight": torch.randn(2, 32, 1, 1, generator=gen),
               f"{name}.lora_mid.weight": torch.randn(2, 2, 3, 3, generator=gen),
               f"{name}.lora_up.weight": torch.randn(32, 2, 1, 1, generator=gen),
               f"{name}.alpha": torch.tensor(1.0)}
    save_file(tensors, str(tmp_path / "tucker.safetensors"))
    m = read_lora(tmp_path / "tucker.safetensors").modules[name]
    assert m.mid is not None
    want = torch.einsum("oa,abhw,bi->oihw", tensors[f"{name}.lora_up.weight"].flatten(1),
                        tensors[f"{name}.lora_mid.weight"], tensors[f"{name}.lora_down.weight"].flatten(1)) * 0.5
    assert torch.allclose(m.delta_weight(), want, atol=1e-6)


@pytest.mark.parametrize("prefix", [False, True], ids=["plain", "base_model.model"])
def test_peft_layout_reads_as_kohya_names(sd1, tmp_path, prefix):
    lf = random_lora(sd1, "sd1", rank=4, alpha=2.0)
    path = write_peft(sd1, lf, tmp_path / "p.safetensors", base_model_prefix=prefix)
    back = read_lora(path)
    assert read_lora_report(path).layouts == ("peft",) and back.family == "sd1"
    assert set(back.modules) == set(lf.modules)
    _same_deltas(lf, back)  # alpha came from diffusers' lora_adapter_metadata


def test_file_written_by_diffusers_save_lora_weights(tiny_sd1, sd1, tmp_path):
    """The real thing: diffusers loads a kohya file, then saves its own peft layout; we read that back."""
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    lf = random_lora(sd1, "sd1", rank=4, alpha=4.0)  # alpha = rank: no alpha needed in the peft file
    kohya = write_kohya(lf, tmp_path / "k.safetensors")
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1, safety_checker=None, requires_safety_checker=False,
                                                   local_files_only=True)
    pipe.load_lora_weights(str(kohya), adapter_name="x")
    StableDiffusionPipeline.save_lora_weights(
        tmp_path / "out", unet_lora_layers=get_peft_model_state_dict(pipe.unet, adapter_name="x"),
        text_encoder_lora_layers=get_peft_model_state_dict(pipe.text_encoder, adapter_name="x"))
    back = read_lora(tmp_path / "out" / "pytorch_lora_weights.safetensors")
    assert set(back.modules) == set(lf.modules)
    _same_deltas(lf, back)


@pytest.mark.parametrize("style", ["processor", "compat"])
def test_old_diffusers_layouts(sd1, tmp_path, style):
    lf = random_lora(sd1, "sd1", rank=4, alpha=None)
    path = write_old_diffusers(sd1, lf, tmp_path / f"{style}.safetensors", style)
    back = read_lora(path)
    assert read_lora_report(path).layouts == ("diffusers-old",)
    assert back.modules and set(back.modules) <= set(lf.modules)
    if style == "processor":  # attention processors carried only q/k/v/out
        assert all(n.endswith(("to_q", "to_k", "to_v", "to_out_0", "q_proj", "k_proj", "v_proj", "out_proj"))
                   for n in back.modules)
        assert "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0" in back.modules
    else:
        assert set(back.modules) == set(lf.modules)
    _same_deltas(lf, back, set(back.modules))


def test_loha_and_lokr(tmp_path):
    gen = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    ha, kr = "lora_unet_mid_block_attentions_0_proj_in", "lora_te_text_model_encoder_layers_0_mlp_fc1"
    tensors = {f"{ha}.hada_w1_a": r(64, 4), f"{ha}.hada_w1_b": r(4, 64), f"{ha}.hada_w2_a": r(64, 4),
               f"{ha}.hada_w2_b": r(4, 64), f"{ha}.alpha": torch.tensor(2.0),
               f"{kr}.lokr_w1": r(8, 4), f"{kr}.lokr_w2_a": r(8, 2), f"{kr}.lokr_w2_b": r(2, 8),
               f"{kr}.alpha": torch.tensor(1.0)}
    save_file(tensors, str(tmp_path / "lyco.safetensors"))
    result = read_lora_report(tmp_path / "lyco.safetensors")
    lf = result.lora
    assert result.layouts == ("lycoris",) and not result.problems
    loha, lokr = lf.modules[ha], lf.modules[kr]
    assert (loha.algo, loha.rank, lokr.algo, lokr.rank) == ("loha", 4, "lokr", 2)
    want_ha = (tensors[f"{ha}.hada_w1_a"] @ tensors[f"{ha}.hada_w1_b"]) * (
        tensors[f"{ha}.hada_w2_a"] @ tensors[f"{ha}.hada_w2_b"]) * (2.0 / 4)
    want_kr = torch.kron(tensors[f"{kr}.lokr_w1"], tensors[f"{kr}.lokr_w2_a"] @ tensors[f"{kr}.lokr_w2_b"]) * (1.0 / 2)
    assert torch.allclose(loha.delta_weight(), want_ha, atol=1e-5)
    assert torch.allclose(lokr.delta_weight(), want_kr, atol=1e-5)


def test_dora_scale_and_peft_magnitude(sd1, tmp_path):
    name = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{name}.lora_down.weight": torch.randn(2, 64), f"{name}.lora_up.weight": torch.randn(64, 2),
               f"{name}.dora_scale": torch.rand(1, 64)}, str(tmp_path / "dora.safetensors"))
    assert read_lora(tmp_path / "dora.safetensors").modules[name].dora_scale.shape == (1, 64)
    path = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"unet.{path}.lora_A.weight": torch.randn(2, 64), f"unet.{path}.lora_B.weight": torch.randn(64, 2),
               f"unet.{path}.lora_magnitude_vector": torch.rand(64)}, str(tmp_path / "peft-dora.safetensors"))
    m = read_lora(tmp_path / "peft-dora.safetensors").modules[name]
    assert m.dora_scale.shape == (64, 1)


def test_sdxl_names_from_every_layout(sdxl, tmp_path):
    lf = random_lora(sdxl, "sdxl", rank=4, alpha=2.0, metadata=lora_metadata("sdxl", "xl"))
    kohya = read_lora(write_kohya(lf, tmp_path / "k.safetensors"))
    assert kohya.family == "sdxl"
    assert any(n.startswith("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1") for n in kohya.modules)
    assert any(n.startswith("lora_te1_") for n in kohya.modules) and any(n.startswith("lora_te2_") for n in kohya.modules)
    peft = read_lora(write_peft(sdxl, lf, tmp_path / "p.safetensors"))  # no metadata: keys tell SDXL
    assert peft.family == "sdxl" and set(peft.modules) == set(lf.modules)
    _same_deltas(lf, peft)
    # kohya names with diffusers paths (ComfyUI and diffusers accept them for SDXL) become SGM names
    from studio.formats.names import kohya_rest_to_path
    from studio.models.original_layout import SDXL_STRUCTURE, unet_path_from_original

    tensors = {}
    for name, m in lf.modules.items():
        if name.startswith("lora_unet_"):
            path = unet_path_from_original(kohya_rest_to_path(name.removeprefix("lora_unet_")), SDXL_STRUCTURE)
            name = "lora_unet_" + path.replace(".", "_")
        tensors[f"{name}.lora_down.weight"] = m.down
        tensors[f"{name}.lora_up.weight"] = m.up
        tensors[f"{name}.alpha"] = torch.tensor(m.alpha)
    save_file(tensors, str(tmp_path / "dnames.safetensors"))
    dnames = read_lora(tmp_path / "dnames.safetensors")
    assert set(dnames.modules) == set(lf.modules)


def test_family_from_shapes_and_metadata(sd1):
    def ev(width: int, proj4: bool):
        return [ModuleEvidence("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
                               {"down": (4, width)}),
                ModuleEvidence("unet", "down_blocks.1.attentions.0.proj_in",
                               {"down": (4, 320, 1, 1) if proj4 else (4, 320)})]

    assert detect_family({}, ev(768, True)).family == "sd1"
    assert detect_family({}, ev(1024, False)).family == "sd2"
    assert detect_family({"ss_v2": "True", "ss_v_parameterization": "True"}, ev(1024, False)).family == "sd2-v"
    assert detect_family({}, ev(2048, False)).family == "sdxl"
    conflict = detect_family({"ss_base_model_version": "sdxl_base_v1-0"}, ev(768, True))
    assert conflict.family == "sd1" and "metadata says SDXL" in conflict.conflict
    assert detect_family({"ss_base_model_version": "sd_v2"}, []).family == "sd2"
    assert detect_family({}, []).family == "unknown"


def test_sd2_lora_is_recognised_without_metadata(tmp_path):
    from studio.models.tiny import build_tiny_pipeline

    lf = random_lora(build_tiny_pipeline("sd2"), "sd2", rank=2)
    assert read_lora(write_kohya(lf, tmp_path / "sd2.safetensors")).family == "sd2"


# --------------------------------------------------------------------------------------------------
# bad input


def test_not_a_lora(tmp_path):
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(4)}, str(tmp_path / "ckpt.safetensors"))
    with pytest.raises(LoraFormatError, match="full Stable Diffusion checkpoint, not a LoRA"):
        read_lora(tmp_path / "ckpt.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(LoraFormatError, match="not a readable .safetensors file"):
        read_lora(tmp_path / "junk.safetensors")
    (tmp_path / "old.ckpt").write_bytes(b"PK")
    with pytest.raises(UnsafeFileError, match="pickled"):
        read_lora(tmp_path / "old.ckpt")


def test_nan_weights_are_found_and_named(sd1, tmp_path):
    lf = random_lora(sd1, "sd1", rank=2)
    bad = "lora_unet_up_blocks_1_attentions_0_proj_out"
    lf.modules[bad].up[0, 0] = float("nan")
    lf.modules[bad].down[0, 0] = float("inf")
    path = write_kohya(lf, tmp_path / "nan.safetensors")
    assert read_lora_report(path).nonfinite == [bad]
    with pytest.raises(LoraFormatError, match=f"NaN or infinite weights in 1 module.*`{bad}`"):
        read_lora(path)


def test_unknown_keys_and_bad_shapes_are_named(tmp_path):
    good = "lora_unet_mid_block_attentions_0_proj_in"
    bad = "lora_unet_mid_block_attentions_0_proj_out"
    save_file({f"{good}.lora_down.weight": torch.ones(2, 8), f"{good}.lora_up.weight": torch.ones(8, 2),
               f"{bad}.lora_down.weight": torch.ones(2, 8), f"{bad}.lora_up.weight": torch.ones(8, 3),
               "lora_unet_mid_block_attentions_0_proj_in.weird_thing": torch.ones(1),
               "something_else.weight": torch.ones(1),
               f"{good.replace('proj_in', 'norm')}.diff": torch.ones(8)}, str(tmp_path / "odd.safetensors"))
    result = read_lora_report(tmp_path / "odd.safetensors")
    assert sorted(result.unknown_keys) == ["lora_unet_mid_block_attentions_0_proj_in.weird_thing",
                                           "something_else.weight"]
    assert "LyCORIS full (diff)" in result.unsupported
    assert any(bad in p and "rank 3" in p for p in result.bad_shapes)
    with pytest.raises(LoraFormatError) as err:
        read_lora(tmp_path / "odd.safetensors")
    assert "`something_else.weight`" in str(err.value) and f"`{bad}`" in str(err.value)


# --------------------------------------------------------------------------------------------------
# inspect


def test_inspect_text_and_json(sd1, tmp_path, capsys):
    from studio.cli import main

    lf = random_lora(sd1, "sd1", rank=4, alpha=2.0, conv=True,
                     metadata=lora_metadata("sd1", "catstyle", {"cat": 12, "orange fur": 7, "photo": 3}))
    path = write_kohya(lf, tmp_path / "cat.safetensors")
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    for expected in ("catstyle", "base family:  SD 1.x", "rank:         4", "alpha:        2",
                     "UNet 236", "text encoder 12", "locon, lora", "(64, 64)", "steps:        40",
                     "cat (12), orange fur (7), photo (3)"):
        assert expected in text, expected
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "sd1" and data["ranks"] == [4] and data["alphas"] == [2.0]
    assert data["by_target"] == {"lora_te": 12, "lora_unet": 236}
    assert data["top_tags"][0] == {"tag": "cat", "count": 12}


def test_inspect_shows_merge_sources(sd1, tmp_path, capsys):
    from studio.cli import main

    paths = [write_kohya(random_lora(sd1, "sd1", rank=2, seed=s, metadata=lora_metadata("sd1", f"src{s}")),
                         tmp_path / f"src{s}.safetensors") for s in (1, 2)]
    out = tmp_path / "merged.safetensors"
    assert main(["mix", f"{paths[0]}:0.75", f"{paths[1]}:-0.25:te=0.5", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert main(["inspect", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["strength"], s["te"]) for s in data["mix_sources"]] == [("src1", 0.75, None),
                                                                                 ("src2", -0.25, 0.5)]
    assert data["merged_from"] == "src1, src2" and data["mix_method"] == "concat"


def test_inspect_exit_codes_for_problems(sd1, tmp_path, capsys):
    from studio.cli import main

    lf = random_lora(sd1, "sd1", rank=2)
    next(iter(lf.modules.values())).up.fill_(float("nan"))
    assert main(["inspect", str(write_kohya(lf, tmp_path / "nan.safetensors"))]) == 3
    assert "problem: NaN or infinite weights" in capsys.readouterr().out
    (tmp_path / "empty.safetensors").write_bytes(b"")
    assert main(["inspect", str(tmp_path / "empty.safetensors")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.safetensors")]) == 2


def test_the_mixer_row_and_inspect_read_the_same_top_tags():
    """One reader of `ss_tag_frequency` (studio.formats.peek.top_tags) for `inspect` and the mixer's row: a
    damaged count (inf, text) or a blank tag is skipped, never a crash of the window's row."""
    from studio.formats.peek import top_tag_words, top_tags

    meta = {"modelspec.trigger_phrase": "sks cat",
            "ss_tag_frequency": json.dumps({"1_a": {"cat": 12, "sks cat": 3, " ": 50, "dog": 4, "x": "many"},
                                            "2_b": {"dog": 9, "bad": float("inf")}})}
    assert top_tags(meta, 3) == [("dog", 13), ("cat", 12), ("sks cat", 3)]
    assert top_tag_words(meta, 3) == ("sks cat", "dog", "cat")
    assert top_tag_words({"ss_tag_frequency": "[" * 100_000}) == ()
    from studio.formats import inspect

    assert inspect.top_tags is top_tags
