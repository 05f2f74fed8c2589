"""The bundled configs describe the real models (published parameter counts) and the bundled tokenizer is
the real CLIP vocabulary, with each family's pad token."""

from __future__ import annotations

import pytest

from studio.models.configs import FAMILIES, load_tokenizer, shipped_config
from tests.model_shapes import build_empty

# parameter counts of the reference models, as published (and as their weights have)
PARAMS = {
    "sd1": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_configs_give_the_published_parameter_counts(family):
    parts = build_empty(family)
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
    assert counts == PARAMS[family]


def test_sd2_variants_differ_only_in_resolution_and_prediction():
    import json

    def read(family, rel):
        return json.loads((shipped_config(family) / rel).read_text())

    base, v = read("sd2", "unet/config.json"), read("sd2-v", "unet/config.json")
    assert {k for k in base if base[k] != v.get(k)} == {"sample_size", "upcast_attention"}
    assert (base["sample_size"], v["sample_size"]) == (64, 96)
    assert read("sd2", "scheduler/scheduler_config.json")["prediction_type"] == "epsilon"
    assert read("sd2-v", "scheduler/scheduler_config.json")["prediction_type"] == "v_prediction"
    assert read("sdxl", "vae/config.json")["scaling_factor"] == 0.13025


@pytest.mark.parametrize(("family", "folder", "pad", "pad_id"), [
    ("sd1", "tokenizer", "<|endoftext|>", 49407), ("sd2", "tokenizer", "!", 0), ("sd2-v", "tokenizer", "!", 0),
    ("sdxl", "tokenizer", "<|endoftext|>", 49407), ("sdxl", "tokenizer_2", "!", 0)])
def test_bundled_tokenizers_are_real_clip(family, folder, pad, pad_id):
    tok = load_tokenizer(shipped_config(family) / folder)
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert (tok.pad_token, tok.pad_token_id, tok.model_max_length) == (pad, pad_id, 77)
    ids = tok("A Photo of a CAT", padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[:7] == [49406, 320, 1125, 539, 320, 2368, 49407] and ids[-1] == pad_id


def test_every_family_folder_is_complete():
    for family in FAMILIES:
        root = shipped_config(family)
        needed = ["model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
                  "text_encoder/config.json", "tokenizer/tokenizer_config.json"]
        if family == "sdxl":
            needed += ["text_encoder_2/config.json", "tokenizer_2/tokenizer_config.json"]
        for rel in needed:
            assert (root / rel).is_file(), f"{family}/{rel}"
