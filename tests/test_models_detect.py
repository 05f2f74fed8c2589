"""Family detection from keys and shapes: the real-size key sets, the prediction-type rules (SD 2.x 512 vs
768-v), files that are not base models, and the model-folder scan behind the Train panel's picker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from studio.errors import ModelLoadError
from studio.models.detect import NotAModelError, classify, detect_model, info_from_state, scan_model_folders
from tests.model_shapes import original_shapes

FAMILY_OF = {"sd1": "v1", "sd2": "v2", "sdxl": "xl_base"}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_real_size_key_sets(family):
    shapes = original_shapes(family)
    assert classify(shapes) == family
    # diffusers' own single-file detection agrees that our original-layout keys are this model
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    meta = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    assert infer_diffusers_model_type(meta) == FAMILY_OF[family]


def info(name: str, weights: str = "sd2", metadata: dict | None = None, **overrides):
    """What detection says of a real-size `weights` checkpoint called `name`; `overrides` are the user's."""
    return info_from_state(Path(name), original_shapes(weights), {"F16": 100}, metadata or {}, size=1, **overrides)


def test_prediction_rules_for_sd2():
    assert (info("sd21-finetune.safetensors").family, info("sd21-finetune.safetensors").prediction_source) == \
        ("sd2", "default")
    assert info("x.safetensors", metadata={"modelspec.prediction_type": "v"}).family == "sd2-v"
    assert info("x.safetensors", metadata={"modelspec.architecture": "stable-diffusion-v2-768-v"}).family == "sd2-v"
    assert info("x.safetensors", metadata={"modelspec.prediction_type": "epsilon"}).family == "sd2"
    for official in ("v2-1_768-ema-pruned.safetensors", "768-v-ema.ckpt", "my-vpred-mix.safetensors"):
        found = info(official)
        assert (found.family, found.prediction, found.prediction_source) == ("sd2-v", "v_prediction", "file name")
    assert info("v2-1_512-ema-pruned.safetensors").family == "sd2"
    # the user decides when the file cannot
    assert info("x.safetensors", prediction="v_prediction").family == "sd2-v"
    assert info("v2-1_768-ema-pruned.safetensors", family="sd2").prediction == "epsilon"
    assert info("x.safetensors", family="sd2-v").prediction == "v_prediction"


def test_v_prediction_for_other_families_and_overrides_that_contradict_the_weights():
    found = info("noob-vpred.safetensors", "sdxl")
    assert (found.family, found.prediction) == ("sdxl", "v_prediction")
    assert info("plain.safetensors", "sd1").prediction == "epsilon"
    with pytest.raises(ModelLoadError, match="is a SDXL model, but the family was set to SD 1.x"):
        info("xl.safetensors", "sdxl", family="sd1")
    with pytest.raises(ModelLoadError, match="SD 2.x"):
        info("one.safetensors", "sd1", family="sd2-v")


def test_non_reference_sizes_fall_back_on_text_encoder_layout():
    sd2 = {k: v for k, v in original_shapes("sd2").items()}
    sd2["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] = (320, 512)
    assert classify(sd2) == "sd2"
    sd1 = dict(original_shapes("sd1"))
    sd1["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] = (320, 64)
    assert classify(sd1) == "sd1"


def write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    save_file(tensors, str(path), metadata=metadata)
    return path


def not_a_model(path: Path, *words: str) -> str:
    before = path.read_bytes()
    with pytest.raises(NotAModelError) as err:
        detect_model(path)
    assert path.read_bytes() == before
    for word in words:
        assert word in str(err.value), str(err.value)
    assert err.value.hint
    return str(err.value)


def test_files_that_are_not_base_models(tmp_path):
    lora = write(tmp_path / "style.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)})
    not_a_model(lora, "LoRA")
    peft = write(tmp_path / "peft.safetensors", {"unet.conv_in.lora_A.weight": torch.zeros(2, 2)})
    not_a_model(peft, "LoRA")
    vae = {k.removeprefix("first_stage_model."): torch.zeros(1) for k in original_shapes("sd1")
           if k.startswith("first_stage_model.")}
    not_a_model(write(tmp_path / "vae-ft-mse.safetensors", vae), "VAE")
    not_a_model(write(tmp_path / "random.safetensors", {"foo": torch.randn(3), "bar": torch.randn(2, 2)}),
                "not a Stable Diffusion checkpoint")
    not_a_model(write(tmp_path / "embedding.safetensors", {"emb_params": torch.zeros(2, 768)}), "embedding")
    unet_only = {k: torch.zeros(1) for k in original_shapes("sd1") if k.startswith("model.diffusion_model.")}
    not_a_model(write(tmp_path / "unet-only.safetensors", unet_only), "no VAE or text encoder")
    text = tmp_path / "readme.ckpt"
    text.write_text("not a checkpoint at all")
    with pytest.raises(ModelLoadError):
        detect_model(text)
    txt = tmp_path / "model.txt"
    txt.write_text("hello")
    not_a_model(txt, "not a model file")


def test_detect_and_scan_folders(tmp_path, tiny_sd1, tiny_sd2v, tiny_sdxl):
    from studio.models.load import load_components
    from studio.models.original_layout import save_original_checkpoint

    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    c = load_components(tiny_sd1)
    save_original_checkpoint(models / "one.safetensors", "sd1", c.unet, c.vae, c.text_encoders,
                             tokenizers=c.tokenizers, dtype=torch.float16)
    c = load_components(tiny_sd2v)
    save_original_checkpoint(models / "sub" / "two-v.safetensors", "sd2-v", c.unet, c.vae, c.text_encoders,
                             tokenizers=c.tokenizers, prediction="v_prediction")
    shutil.copytree(tiny_sdxl, models / "xl-diffusers")
    write(models / "a-lora.safetensors", {"lora_unet_conv_in.lora_down.weight": torch.zeros(1, 4)})
    (models / "broken.safetensors").write_bytes((models / "one.safetensors").read_bytes()[:5000])
    (models / "notes.txt").write_text("ignored: not a model suffix")

    scan = scan_model_folders([models, tmp_path / "missing"])
    found = {m.path.name: m for m in scan.models}
    assert set(found) == {"one.safetensors", "two-v.safetensors", "xl-diffusers"}
    assert (found["one.safetensors"].family, found["one.safetensors"].precision,
            found["one.safetensors"].layout) == ("sd1", "fp16", "single-file")
    assert found["one.safetensors"].size_bytes == (models / "one.safetensors").stat().st_size
    assert (found["two-v.safetensors"].family, found["two-v.safetensors"].prediction,
            found["two-v.safetensors"].prediction_source) == ("sd2-v", "v_prediction", "metadata")
    xl = found["xl-diffusers"]
    assert (xl.family, xl.layout, xl.precision, xl.prediction_source) == ("sdxl", "diffusers", "fp32",
                                                                            "scheduler config")
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert set(reasons) == {"a-lora.safetensors", "broken.safetensors", "missing"}
    assert "LoRA" in reasons["a-lora.safetensors"]
    assert "truncated" in reasons["broken.safetensors"]
    assert detect_model(tiny_sd2v).family == "sd2-v"
    assert detect_model(tiny_sd1).family == "sd1"
