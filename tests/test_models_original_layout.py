"""diffusers → original names: the SD 1.x CompVis keys everyone knows, and `original_target` (what the mixer
uses to bake into a checkpoint in its own layout) agreeing with the whole-model conversion for every weight."""

from __future__ import annotations

import pytest
import torch

from studio.models.original_layout import (SD_STRUCTURE, original_state_dict, original_target,
                                           unet_path_from_original, unet_path_to_original)
from studio.models.tiny import build_tiny_pipeline
from tests.model_shapes import original_shapes

SD1_KNOWN = {
    "conv_in.weight": "input_blocks.0.0.weight",
    "down_blocks.0.attentions.1.proj_in.weight": "input_blocks.2.1.proj_in.weight",
    "down_blocks.2.downsamplers.0.conv.weight": "input_blocks.9.0.op.weight",
    "down_blocks.3.resnets.1.conv2.weight": "input_blocks.11.0.out_layers.3.weight",
    "mid_block.resnets.1.norm1.bias": "middle_block.2.in_layers.0.bias",
    "up_blocks.0.upsamplers.0.conv.weight": "output_blocks.2.1.conv.weight",  # no attention in SD1's up_blocks.0
    "up_blocks.1.upsamplers.0.conv.weight": "output_blocks.5.2.conv.weight",
    "up_blocks.3.attentions.2.proj_out.weight": "output_blocks.11.1.proj_out.weight",
    "up_blocks.3.resnets.2.conv_shortcut.weight": "output_blocks.11.0.skip_connection.weight",
    "time_embedding.linear_2.bias": "time_embed.2.bias",
    "conv_norm_out.weight": "out.0.weight",
}


def test_sd1_compvis_names():
    real = original_shapes("sd1")
    for diffusers_key, original in SD1_KNOWN.items():
        assert unet_path_to_original(diffusers_key, SD_STRUCTURE) == original
        assert unet_path_from_original(original, SD_STRUCTURE) == diffusers_key
        assert "model.diffusion_model." + original in real


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_original_target_agrees_with_the_whole_model_conversion(family):
    pipe = build_tiny_pipeline(family)
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    whole = original_state_dict(family, pipe.unet, pipe.vae, encoders)
    parts = {"unet": pipe.unet, "vae": pipe.vae, "text_encoder": encoders[0]}
    if family == "sdxl":
        parts["text_encoder_2"] = encoders[1]
    used: set[str] = set()
    for component, module in parts.items():
        hidden = getattr(module.config, "hidden_size", None)
        for key, value in module.state_dict().items():
            target = original_target(component, key, family, hidden_size=hidden)
            stored = whole[target.key]
            if target.rows is not None:
                stored = stored[target.rows]
            if target.transpose:
                stored = stored.T
            if target.conv1x1:
                stored = stored[:, :, 0, 0]
            assert torch.equal(stored, value), (component, key, target)
            used.add(target.key)
    assert used == set(whole)  # every original key is some diffusers weight's home
