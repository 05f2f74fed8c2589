"""diffusers → original names: the SD 1.x CompVis keys everyone knows."""

from __future__ import annotations

from studio.models.original_layout import UnetStructure, unet_path_from_original, unet_path_to_original
from tests.model_shapes import original_shapes

SD_STRUCTURE = UnetStructure(2, (True, True, True, False), (False, True, True, True))

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

