"""Issue 16 B: base-model files as diffusers' official converters write them (`tests/official_checkpoints.py`),
from tiny random models, going through the one rule the picker, the pre-start check, the CLI and the loader
share: weights-only `.ckpt` (zip and legacy) lists, passes the check and trains; a damaged one gets our
message; EMA is shown and chosen; v-prediction is read from the weights; inpainting, refiners, SD3/SD3.5 and
Flux are refused with their names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.errors import ModelLoadError
from studio.models import configs
from studio.models.base_files import BASE_MODEL_SUFFIXES, dialog_filter
from studio.models.describe import details, summary
from studio.models.detect import NotAModelError, detect_model, scan_model_folders
from studio.models.single_file import load_single_file_components
from studio.validate import check_files, errors_of, validate
from tests import official_checkpoints as official
from tests.conftest import tiny_config

FOLDERS = {"sd1": "tiny_sd1", "sd2-v": "tiny_sd2v", "sdxl": "tiny_sdxl"}


def pipeline(folder: Path, family: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    return cls.from_pretrained(folder, local_files_only=True)


@pytest.fixture
def tiny_configs(monkeypatch, tiny_sd1, tiny_sd2v, tiny_sdxl):
    """The official converters write no configs into the file, and a tiny model does not fit the bundled
    full-size ones: stand the tiny folders in for the bundled configs (what `config=` does for one call)."""
    folders = {"sd1": tiny_sd1, "sd2": tiny_sd2v, "sd2-v": tiny_sd2v, "sdxl": tiny_sdxl}
    monkeypatch.setattr(configs, "shipped_config", lambda family: folders[family])
    return folders


def model_problems(path: Path, **model) -> list[str]:
    cfg = tiny_config(path, path.parent, path.parent / "out")
    if model:
        cfg = cfg.with_section("model", **model)
    return [p.message for p in validate(cfg) + check_files(cfg, None) if p.section == "model"]


def assert_unet_is(unet: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = unet.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


LAYOUTS = [("sd1", "zip", False, ".ckpt"), ("sd1", "zip", True, ".ckpt"), ("sd1", "legacy", False, ".ckpt"),
           ("sd2-v", "zip", False, ".ckpt"), ("sdxl", "zip", False, ".ckpt"),
           ("sdxl", "safetensors", True, ".safetensors")]


@pytest.mark.parametrize(("family", "fmt", "half", "suffix"), LAYOUTS)
def test_official_layouts_are_listed_pass_the_check_and_load_bit_exactly(request, tmp_path, family, fmt, half, suffix):
    folder = request.getfixturevalue(FOLDERS[family])
    pipe = pipeline(folder, family)
    models = tmp_path / "models"
    models.mkdir()
    path = official.save(official.official_state_dict(pipe, family), models / f"converted{suffix}", fmt=fmt, half=half)
    scan = scan_model_folders([models])
    assert scan.skipped == []
    (info,) = scan.models
    want_family = "sd2" if family == "sd2-v" else family  # no metadata: a fresh tiny SD 2.x reads as epsilon
    assert (info.family, info.precision, info.has_ema) == (want_family, "fp16" if half else "fp32", False)
    assert model_problems(path) == []
    c = load_single_file_components(path, config=folder, family=family)
    expected = pipe.unet.state_dict()
    if half:
        expected = {k: v.half().float() for k, v in expected.items()}
    assert_unet_is(c.unet, expected)
    for ours, theirs in zip(c.text_encoders, [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]):
        ref = theirs.state_dict()
        for key, value in ours.state_dict().items():
            if not key.endswith("position_ids"):
                assert torch.equal(value, ref[key].half().float() if half else ref[key]), key


def test_the_file_dialog_offers_what_the_checks_accept():
    text = dialog_filter()
    for suffix in (".safetensors", ".ckpt", ".pt"):
        assert f"*{suffix}" in text and suffix in BASE_MODEL_SUFFIXES


@pytest.mark.parametrize("damage", ["truncated-zip", "truncated-legacy", "text", "empty"])
def test_a_damaged_ckpt_gets_our_message(tmp_path, tiny_sd1, damage):
    pipe = pipeline(tiny_sd1, "sd1")
    good = official.save(official.official_state_dict(pipe, "sd1"), tmp_path / "good.ckpt",
                         fmt="legacy" if damage == "truncated-legacy" else "zip")
    path = tmp_path / "model.ckpt"
    data = good.read_bytes()
    path.write_bytes({"truncated-zip": data[: len(data) // 2], "truncated-legacy": data[: len(data) // 2],
                      "text": b"<html>404 not found</html>", "empty": b""}[damage])
    with pytest.raises(ModelLoadError) as err:
        detect_model(path)
    message = str(err.value)
    assert message.startswith("model.ckpt: ") and "not a valid checkpoint (damaged or not a PyTorch file)" in message
    assert "Pytorch" not in message and "Weights only" not in message and "download it again" in err.value.hint
    (problem,) = model_problems(path)
    assert "not a valid checkpoint (damaged or not a PyTorch file)" in problem


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_ema_weights_are_shown_and_chosen(tmp_path, tiny_sd1, tiny_configs):
    pipe = pipeline(tiny_sd1, "sd1")
    state = official.official_state_dict(pipe, "sd1")
    ema_pipe = pipeline(tiny_sd1, "sd1")
    torch.manual_seed(7)
    for p in ema_pipe.unet.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)  # an average that differs from the trained weights
    ema_unet = official.convert_unet(ema_pipe.unet.state_dict(), dict(ema_pipe.unet.config))
    path = official.save(official.with_ema(state, ema_unet), tmp_path / "with-ema.ckpt")

    info = detect_model(path)
    assert (info.has_ema, info.ema) == (True, "non-ema")
    assert summary(info).endswith("contains EMA weights") and "non-EMA" in details(info)
    assert detect_model(path, ema="use").ema == "ema"

    auto = load_single_file_components(path)
    assert auto.ema == "non-ema"
    assert_unet_is(auto.unet, pipe.unet.state_dict())
    assert_unet_is(load_single_file_components(path, ema="ignore").unet, pipe.unet.state_dict())
    used = load_single_file_components(path, ema="use")
    assert used.ema == "ema"
    assert_unet_is(used.unet, ema_pipe.unet.state_dict())
    assert not torch.equal(used.unet.conv_in.weight, auto.unet.conv_in.weight)

    plain = official.save(state, tmp_path / "plain.ckpt")
    assert (detect_model(plain).has_ema, detect_model(plain).ema) == (False, "none")
    with pytest.raises(ModelLoadError, match="contains no EMA weights"):
        load_single_file_components(plain, ema="use")
    (problem,) = model_problems(plain, ema="use")
    assert "plain.ckpt contains no EMA weights" in problem
    # a diffusers folder holds one UNet: the check and the loader refuse `use` alike
    (problem,) = model_problems(tiny_sd1, ema="use")
    assert "tiny-sd1 contains no EMA weights" in problem
    from studio.models.load import load_components

    with pytest.raises(ModelLoadError, match="tiny-sd1 contains no EMA weights"):
        load_components(tiny_sd1, ema="use")


def read_metadata(path: str | Path) -> dict[str, str]:
    from studio.models.safe_load import read_safetensors_header

    return read_safetensors_header(path).metadata


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_the_export_records_which_ema_copy_was_trained(tmp_path, tiny_sd1, image_folder, tiny_configs):
    from studio.events import Failed, Finished
    from studio.train.engine import run_training

    pipe = pipeline(tiny_sd1, "sd1")
    state = official.official_state_dict(pipe, "sd1")
    unet = official.convert_unet(pipe.unet.state_dict(), dict(pipe.unet.config))
    path = official.save(official.with_ema(state, unet), tmp_path / "ema.ckpt", fmt="legacy")
    cfg = tiny_config(path, image_folder, tmp_path / "out", schedule={"max_steps": 1, "batch_size": 1})
    cfg = cfg.with_section("model", ema="use")
    assert errors_of(validate(cfg) + check_files(cfg, None)) == []
    events = list(run_training(cfg))
    assert not [e for e in events if isinstance(e, Failed)], [e for e in events if isinstance(e, Failed)]
    (finished,) = [e for e in events if isinstance(e, Finished)]
    assert read_metadata(finished.outputs[-1])["studio.base_model_ema"] == "ema"


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_a_ckpt_trains_one_step_from_the_cli(tmp_path, tiny_sd1, image_folder, tiny_configs, capsys):
    from studio.cli import main

    pipe = pipeline(tiny_sd1, "sd1")
    path = official.save(official.official_state_dict(pipe, "sd1"), tmp_path / "sd15.ckpt")
    assert model_problems(path) == []
    code = main(["train", "--model", str(path), "--data", str(image_folder), "--steps", "1", "--batch-size", "1",
                 "--resolution", "64", "--out", str(tmp_path / "out"), "--name", "from-ckpt", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    exported = Path(out[-1])
    assert exported.name == "from-ckpt.safetensors" and exported.is_file()
    meta = read_metadata(exported)
    assert (meta["ss_base_model_version"], meta["ss_steps"], meta["studio.base_model_ema"]) == ("sd_v1", "1", "none")


def test_sd2_v_prediction_from_the_weights(tmp_path, tiny_sd2v):
    pipe = pipeline(tiny_sd2v, "sd2-v")
    probe = pipe.unet.up_blocks[3].attentions[2].transformer_blocks[0].norm1  # output_blocks.11.1, block 0
    fresh = official.save(official.official_state_dict(pipe, "sd2-v"), tmp_path / "finetune-a.safetensors",
                          fmt="safetensors")
    torch.manual_seed(3)
    probe.bias.data = torch.randn_like(probe.bias) * 0.3  # the spread a trained 768-v model has there (> 0.09)
    v_state = official.official_state_dict(pipe, "sd2-v")
    v_file = official.save(v_state, tmp_path / "finetune-b.safetensors", fmt="safetensors")
    v_ckpt = official.save(v_state, tmp_path / "finetune-b.ckpt")

    eps = detect_model(fresh)
    assert (eps.family, eps.prediction, eps.prediction_source) == ("sd2", "epsilon", "weights")
    assert "epsilon, from the weights" in summary(eps)
    for path in (v_file, v_ckpt):
        info = detect_model(path)
        assert (info.family, info.prediction, info.prediction_source) == ("sd2-v", "v_prediction", "weights")
        assert summary(info).endswith("v-prediction, from the weights")
    overridden = detect_model(v_file, prediction="epsilon")
    assert (overridden.family, overridden.prediction, overridden.prediction_source) == ("sd2", "epsilon", "override")
    c = load_single_file_components(v_file, config=tiny_sd2v)
    assert (c.family, c.prediction, c.scheduler.config.prediction_type) == ("sd2-v", "v_prediction", "v_prediction")
    # metadata still goes first
    from safetensors.torch import save_file

    save_file(v_state, str(tmp_path / "meta.safetensors"), metadata={"modelspec.prediction_type": "epsilon"})
    assert detect_model(tmp_path / "meta.safetensors").prediction_source == "metadata"


def refused(path: Path, *words: str) -> str:
    with pytest.raises(NotAModelError) as err:
        detect_model(path)
    for word in words:
        assert word in str(err.value), str(err.value)
    assert err.value.hint
    (problem,) = model_problems(path)
    assert str(err.value) in problem
    scan = scan_model_folders([path.parent])
    assert path not in [m.path for m in scan.models]
    assert [s.reason for s in scan.skipped if s.path == path] == [str(err.value)]
    return str(err.value)


def test_inpainting_refiner_sd3_and_flux_are_named(tmp_path, tiny_sd1, tiny_sdxl):
    sd1 = official.official_state_dict(pipeline(tiny_sd1, "sd1"), "sd1")
    xl = official.official_state_dict(pipeline(tiny_sdxl, "sdxl"), "sdxl")
    cases = [
        ("inpaint.ckpt", official.as_inpainting(sd1), ("SD 1.x inpainting model", "9-channel", "not supported yet")),
        ("refiner.safetensors", official.as_refiner(xl), ("SDXL refiner",)),
        ("sd3_medium.safetensors", official.sd3_state(), ("an SD3 checkpoint", "not supported yet")),
        ("sd3.5_medium.safetensors", official.sd3_state(qk_norm=True), ("an SD 3.5 checkpoint", "not supported yet")),
        ("sd3.5_large.safetensors", official.sd3_state(qk_norm=True, blocks=38), ("an SD 3.5 Large checkpoint",)),
        ("flux1-dev.safetensors", official.flux_state(), ("a Flux checkpoint", "not supported yet")),
        ("flux1-schnell.safetensors", official.flux_state(prefixed=False), ("a Flux checkpoint",)),
    ]
    for name, state, words in cases:
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        fmt = "zip" if name.endswith(".ckpt") else "safetensors"
        refused(official.save(state, folder / name, fmt=fmt), name, *words)
    # a Flux LoRA with the bare block names is still a LoRA, not a Flux checkpoint
    lora = official.save({"double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(2, 8),
                          "double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(8, 2),
                          "single_blocks.0.linear1.lora_A.weight": torch.zeros(2, 8)},
                         tmp_path / "flux-lora.safetensors", fmt="safetensors")
    with pytest.raises(NotAModelError, match="is a LoRA, not a base model"):
        detect_model(lora)
