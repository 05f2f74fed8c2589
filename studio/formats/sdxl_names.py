"""SDXL UNet module names: diffusers paths ↔ the original (SGM) block paths sd-scripts writes in LoRAs.

sd-scripts trains SDXL on its own copy of the original UNet, so its LoRA names are the SGM block path with
diffusers-style names inside the transformer (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`)
and the original resnet names (`…_in_layers_2`, `…_emb_layers_1`, `…_out_layers_3`, `…_skip_connection`),
down-samplers as `input_blocks_<n>_0_op`, up-samplers as `output_blocks_<n>_2_conv`. A1111 matches these
directly; ComfyUI, Forge and diffusers translate them. Checked against sd-scripts'
`library/sdxl_model_util.py` (`make_unet_conversion_map`) and ComfyUI's `comfy/utils.py`
(`unet_to_diffusers`).

The mapping is the UNet block arithmetic in `studio.models.original_layout` with SDXL's structure
(3 blocks, 2 resnets each; attention in down blocks 1-2 and up blocks 0-1). Transformer depth does not
enter the names' block part, so it serves the real model (depths 0/2/10) and the tiny one (1/2/2) alike.
"""

from __future__ import annotations

from studio.errors import LoraFormatError
from studio.formats.names import kohya_rest_to_path
from studio.models.original_layout import SDXL_STRUCTURE, unet_path_from_original, unet_path_to_original


def diffusers_to_sgm(path: str) -> str:
    """`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` → `input_blocks.4.1.transformer_blocks.0.attn1.to_q`."""
    try:
        return unet_path_to_original(path, SDXL_STRUCTURE)
    except ValueError:
        raise LoraFormatError(f"`{path}` is not a module of the SDXL UNet") from None


def sgm_to_diffusers(name: str) -> str:
    """The diffusers UNet path of an SGM name, given dotted (`input_blocks.4.1.proj_in`) or as a kohya name
    with or without its prefix (`lora_unet_input_blocks_4_1_proj_in`, `input_blocks_4_1_proj_in`)."""
    path = name.removeprefix("lora_unet_")
    if "." not in path:
        path = kohya_rest_to_path(path)
    try:
        return unet_path_from_original(path, SDXL_STRUCTURE)
    except ValueError:
        raise LoraFormatError(f"`{name}` is not an SDXL UNet module name") from None


def kohya_unet_name(path: str) -> str:
    """The full sd-scripts name of a diffusers SDXL UNet module path: `lora_unet_` + SGM path with underscores."""
    return "lora_unet_" + diffusers_to_sgm(path).replace(".", "_")
