"""SDXL UNet names: diffusers paths ↔ the SGM names sd-scripts writes, for the tiny and the real structure."""

from __future__ import annotations

import pytest
import torch

from studio.errors import LoraFormatError
from studio.formats.names import diffusers_to_sgm, kohya_name_for, kohya_rest_to_path
from studio.models.original_layout import SDXL_STRUCTURE, unet_path_from_original
from tests.model_shapes import build_empty

# names as sd-scripts writes them, with the diffusers module each one is (from sd-scripts'
# make_unet_conversion_map, ComfyUI's unet_to_diffusers, and LoRA readers' tests that check against them)
KNOWN = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k",
    "lora_unet_middle_block_1_proj_in": "mid_block.attentions.0.proj_in",
    "lora_unet_middle_block_1_proj_out": "mid_block.attentions.0.proj_out",
    "lora_unet_output_blocks_2_2_conv": "up_blocks.0.upsamplers.0.conv",
    "lora_unet_output_blocks_5_2_conv": "up_blocks.1.upsamplers.0.conv",
    "lora_unet_input_blocks_3_0_op": "down_blocks.0.downsamplers.0.conv",
    "lora_unet_input_blocks_6_0_op": "down_blocks.1.downsamplers.0.conv",
    "lora_unet_input_blocks_1_0_in_layers_2": "down_blocks.0.resnets.0.conv1",
    "lora_unet_input_blocks_1_0_emb_layers_1": "down_blocks.0.resnets.0.time_emb_proj",
    "lora_unet_input_blocks_1_0_out_layers_3": "down_blocks.0.resnets.0.conv2",
    "lora_unet_input_blocks_4_0_skip_connection": "down_blocks.1.resnets.0.conv_shortcut",
    "lora_unet_middle_block_0_in_layers_2": "mid_block.resnets.0.conv1",
    "lora_unet_middle_block_2_out_layers_3": "mid_block.resnets.1.conv2",
    "lora_unet_output_blocks_0_0_skip_connection": "up_blocks.0.resnets.0.conv_shortcut",
    "lora_unet_output_blocks_8_0_emb_layers_1": "up_blocks.2.resnets.2.time_emb_proj",
    # only in the real depth (10 transformer blocks in the 1280-wide blocks)
    "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_out_0": "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_out.0",
    "lora_unet_middle_block_1_transformer_blocks_9_ff_net_2": "mid_block.attentions.0.transformer_blocks.9.ff.net.2",
    "lora_unet_output_blocks_0_1_transformer_blocks_9_ff_net_0_proj": "up_blocks.0.attentions.0.transformer_blocks.9.ff.net.0.proj",
    "lora_unet_output_blocks_5_1_transformer_blocks_1_attn2_to_v": "up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_v",
    "lora_unet_time_embed_0": "time_embedding.linear_1",
    "lora_unet_label_emb_0_2": "add_embedding.linear_2",
    "lora_unet_input_blocks_0_0": "conv_in",
    "lora_unet_out_2": "conv_out",
}


def sgm_to_diffusers(name: str) -> str:
    """The diffusers path of a kohya SGM name or a dotted SGM path: the inverse the names must have."""
    path = name.removeprefix("lora_unet_")
    return unet_path_from_original(path if "." in path else kohya_rest_to_path(path), SDXL_STRUCTURE)


def weighted_modules(unet: torch.nn.Module) -> list[str]:
    return [name for name, m in unet.named_modules() if name and any(True for _ in m.parameters(recurse=False))]


def test_every_tiny_sdxl_module_round_trips(tiny_sdxl):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl, subfolder="unet")
    names = weighted_modules(unet)
    sgm = [diffusers_to_sgm(n) for n in names]
    assert len(set(sgm)) == len(names)
    for name, original in zip(names, sgm):
        assert sgm_to_diffusers(original) == name
        assert sgm_to_diffusers(kohya_name_for("unet", name, "sdxl")) == name
        assert not original.startswith(("down_blocks", "up_blocks", "mid_block"))


def test_real_structure_matches_sd_scripts_names():
    unet = build_empty("sdxl")["unet"]
    modules = dict(unet.named_modules())
    ours = {kohya_name_for("unet", n, "sdxl"): n for n in weighted_modules(unet)}
    for kohya, path in KNOWN.items():
        assert path in modules, path
        assert kohya_name_for("unet", path, "sdxl") == kohya
        assert ours[kohya] == path
        assert sgm_to_diffusers(kohya) == path
    # sd-scripts' default SDXL LoRA (Linear and 1×1 conv layers inside the transformers) has 722 UNet modules
    attention = [n for n, m in unet.named_modules() if ".attentions." in n and isinstance(m, torch.nn.Linear)]
    assert len({kohya_name_for("unet", n, "sdxl") for n in attention}) == 722


def test_names_outside_the_unet_are_refused():
    with pytest.raises(LoraFormatError):
        diffusers_to_sgm("down_blocks.3.attentions.0.proj_in")  # SDXL has no 4th block's attention
    with pytest.raises(ValueError):
        sgm_to_diffusers("lora_unet_output_blocks_8_2_conv")  # the last up block has no upsampler
    with pytest.raises(ValueError):
        sgm_to_diffusers("text_model_encoder_layers_0_mlp_fc1")
