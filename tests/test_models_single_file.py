"""Acceptance 1 of issue 6: tiny SD 1.5-, SD 2 (v)- and SDXL-architecture models saved as a diffusers folder
and as an original-layout single file both load with the network blocked, with the saved weights and the
right family."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from studio.errors import ModelLoadError
from studio.models.load import Components, load_components
from studio.models.original_layout import save_original_checkpoint


@pytest.fixture
def offline(monkeypatch):
    """No network: the hub is told to stay offline and any socket connection raises."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts: list[object] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network blocked in tests (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"loading tried to reach the network: {attempts}"


def saved_weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    (file,) = sorted((folder / part).glob("*.safetensors"))
    return load_file(str(file))


def assert_same(module: torch.nn.Module, expected: dict[str, torch.Tensor], what: str) -> None:
    got = module.state_dict()
    expected = {k.removeprefix("text_model.") if k.removeprefix("text_model.") in got else k: v
                for k, v in expected.items() if not k.endswith("position_ids")}
    assert set(got) == set(expected), f"{what}: keys differ: {sorted(set(got) ^ set(expected))[:5]}"
    for key, value in expected.items():
        assert torch.equal(got[key], value), f"{what}: {key} differs"


def assert_matches_folder(c: Components, folder: Path) -> None:
    assert_same(c.unet, saved_weights(folder, "unet"), "unet")
    assert_same(c.vae, saved_weights(folder, "vae"), "vae")
    assert_same(c.text_encoders[0], saved_weights(folder, "text_encoder"), "text_encoder")
    if c.family == "sdxl":
        assert_same(c.text_encoders[1], saved_weights(folder, "text_encoder_2"), "text_encoder_2")


def single_file_from(folder: Path, out: Path, family: str) -> Path:
    c = load_components(folder)
    prediction = "v_prediction" if family == "sd2-v" else "epsilon"
    return save_original_checkpoint(out, family, c.unet, c.vae, c.text_encoders, tokenizers=c.tokenizers,
                                    prediction=prediction)


CASES = [("tiny_sd1", "sd1", "epsilon"), ("tiny_sd2v", "sd2-v", "v_prediction"), ("tiny_sdxl", "sdxl", "epsilon")]


@pytest.mark.parametrize(("fixture", "family", "prediction"), CASES)
def test_folder_and_single_file_load_offline(request, tmp_path, fixture, family, prediction):
    folder: Path = request.getfixturevalue(fixture)
    single = single_file_from(folder, tmp_path / f"{family}.safetensors", family)
    offline = request.getfixturevalue("offline")
    for source in (folder, single):
        c = load_components(source)
        assert (c.family, c.prediction) == (family, prediction), source
        assert c.scheduler.config.prediction_type == prediction
        assert_matches_folder(c, folder)
        ids = c.tokenizers[0]("a photo of a cat").input_ids
        assert ids[0] == c.tokenizers[0].bos_token_id and ids[-1] == c.tokenizers[0].eos_token_id
        assert len(c.tokenizers) == len(c.text_encoders) == (2 if family == "sdxl" else 1)
    assert offline == []


def test_single_file_keys_are_original_layout(tmp_path, tiny_sdxl):
    from studio.models.safe_load import read_safetensors_header

    header = read_safetensors_header(single_file_from(tiny_sdxl, tmp_path / "xl.safetensors", "sdxl"))
    keys = set(header.tensors)
    for key in ("model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight",
                "model.diffusion_model.middle_block.1.proj_in.weight",
                "model.diffusion_model.output_blocks.2.2.conv.weight",
                "model.diffusion_model.label_emb.0.0.weight",
                "first_stage_model.decoder.mid.attn_1.q.weight",
                "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
                "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
                "conditioner.embedders.1.model.text_projection"):
        assert key in keys, key
    assert header.tensors["first_stage_model.decoder.mid.attn_1.q.weight"].shape[2:] == (1, 1)
    assert not any(k.startswith(("down_blocks", "unet.", "text_encoder")) for k in keys)
    assert header.metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base"


def test_sd2_without_metadata_is_epsilon_unless_told(tmp_path, tiny_sd2v):
    from safetensors.torch import save_file

    from studio.models.safe_load import load_state_dict

    plain = tmp_path / "my-sd2-finetune.safetensors"
    save_file(load_state_dict(single_file_from(tiny_sd2v, tmp_path / "v.safetensors", "sd2-v")), str(plain))
    # without its metadata the file no longer says which SD 2.x it is: the tiny sizes need a config folder
    c = load_components_with(plain, tiny_sd2v)
    assert (c.family, c.prediction) == ("sd2", "epsilon")
    c = load_components_with(plain, tiny_sd2v, prediction="v_prediction")
    assert (c.family, c.prediction) == ("sd2-v", "v_prediction")
    assert c.scheduler.config.prediction_type == "v_prediction"
    c = load_components_with(plain, tiny_sd2v, family="sd2-v")
    assert (c.family, c.prediction) == ("sd2-v", "v_prediction")


def load_components_with(path: Path, config: Path, **overrides) -> Components:
    from studio.models.single_file import load_single_file_components

    return load_single_file_components(path, config=config, **overrides)


def test_wrong_family_override_and_wrong_sizes_are_clear(tmp_path, tiny_sd1):
    single = single_file_from(tiny_sd1, tmp_path / "one.safetensors", "sd1")
    with pytest.raises(ModelLoadError, match="is a SD 1.x model, but the family was set to SDXL") as info:
        load_components(single, family="sdxl")
    assert "auto" in info.value.hint
    # the tiny weights against the bundled full-size SD 1.5 configuration
    from safetensors.torch import save_file

    from studio.models.safe_load import load_state_dict

    bare = tmp_path / "bare.safetensors"
    save_file(load_state_dict(single), str(bare))
    with pytest.raises(ModelLoadError, match="does not match the sd1 configuration"):
        load_components(bare)


def test_fp16_checkpoint_loads_in_requested_dtype(tmp_path, tiny_sd1):
    from studio.models.detect import detect_model

    c = load_components(tiny_sd1)
    path = save_original_checkpoint(tmp_path / "half.safetensors", "sd1", c.unet, c.vae, c.text_encoders,
                                    tokenizers=c.tokenizers, dtype=torch.float16)
    assert detect_model(path).precision == "fp16"
    loaded = load_components(path, dtype=torch.bfloat16)
    assert loaded.unet.dtype == torch.bfloat16
    ref = c.unet.state_dict()["conv_in.weight"].to(torch.float16).to(torch.bfloat16)
    assert torch.equal(loaded.unet.state_dict()["conv_in.weight"], ref)


def test_training_previews_of_a_folder_and_its_single_file_use_the_same_timesteps(tmp_path, tiny_sd1):
    """A single file's scheduler config lists `_use_default_values`; taken as given, Euler's spacing would differ."""
    from studio.train.sampling import build_pipeline

    single = single_file_from(tiny_sd1, tmp_path / "one.safetensors", "sd1")
    timesteps = []
    for source in (tiny_sd1, single):
        c = load_components(source)
        scheduler = build_pipeline(c, c.unet, c.text_encoders).scheduler
        scheduler.set_timesteps(20)
        timesteps.append(scheduler.timesteps.tolist())
    assert timesteps[0] == timesteps[1]
