"""Module paths ↔ kohya names, for layouts that name modules by their diffusers path.

kohya names are the module path with every dot turned into an underscore, so going from a path to a
name is trivial, and going back is ambiguous (`to_q` vs `to.q`). Loaders resolve that ambiguity with a
vocabulary of the identifiers that really occur in the diffusers UNet and the CLIP text encoders; we do
the same, so that a kohya name written with diffusers paths for SDXL (which ComfyUI, Forge and diffusers
accept) can be turned back into a path and re-written with the SGM block names sd-scripts and A1111 use.
"""

from __future__ import annotations

import re

from studio.errors import LoraFormatError

# identifiers containing underscores that occur in UNet / CLIP module paths (longest first when matching)
_COMPOUNDS = (
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "to_q", "to_k", "to_v", "to_out",
    "proj_in", "proj_out", "conv_shortcut", "time_emb_proj", "conv_in", "conv_out", "conv_norm_out",
    "time_embedding", "linear_1", "linear_2", "add_embedding", "add_time_proj", "text_model", "self_attn",
    "q_proj", "k_proj", "v_proj", "out_proj", "final_layer_norm", "layer_norm1", "layer_norm2",
    "token_embedding", "position_embedding", "text_projection", "input_blocks", "output_blocks",
    "middle_block", "in_layers", "out_layers", "emb_layers", "skip_connection", "time_embed", "label_emb",
)
_COMPOUND_TOKENS = sorted((c.split("_") for c in _COMPOUNDS), key=len, reverse=True)

KOHYA_PREFIX_OF = {"unet": "lora_unet", "te": "lora_te", "te1": "lora_te1", "te2": "lora_te2"}
#: component of a kohya prefix (te1/te2 before te: `lora_te1_…` also starts with `lora_te`)
KOHYA_PREFIXES = (("lora_unet_", "unet"), ("lora_te1_", "te1"), ("lora_te2_", "te2"), ("lora_te_", "te"))


def split_kohya_name(name: str) -> tuple[str, str]:
    """(`unet`|`te`|`te1`|`te2`, the rest) of a kohya module name; LoraFormatError for other names."""
    for prefix, component in KOHYA_PREFIXES:
        if name.startswith(prefix):
            return component, name[len(prefix):]
    raise LoraFormatError(f"`{name}` is not a kohya module name (no lora_unet_/lora_te_ prefix)")


def path_to_kohya_rest(path: str) -> str:
    return path.replace(".", "_")


def kohya_rest_to_path(rest: str) -> str:
    """`down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0` → `down_blocks.1.…attn1.to_out.0`."""
    tokens = rest.split("_")
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        for compound in _COMPOUND_TOKENS:
            if tokens[i:i + len(compound)] == compound:
                parts.append("_".join(compound))
                i += len(compound)
                break
        else:
            parts.append(tokens[i])
            i += 1
    return ".".join(parts)


_SGM_UNET = re.compile(r"^(input_blocks|output_blocks|middle_block)_")


def is_sgm_unet_rest(rest: str) -> bool:
    """True for SDXL UNet names written with the original (SGM) block paths, as sd-scripts writes them."""
    return bool(_SGM_UNET.match(rest))


def unet_kohya_name(path: str, family: str) -> str:
    """The kohya name of a UNet module path: SGM block path for SDXL (sd-scripts, A1111), diffusers otherwise."""
    if family == "sdxl":
        from studio.formats.sdxl_names import diffusers_to_sgm

        path = diffusers_to_sgm(path)
    return "lora_unet_" + path_to_kohya_rest(path)


def kohya_name_for(component: str, path: str, family: str) -> str:
    """kohya name of a module given by component (`unet`, `te`, `te1`, `te2`) and diffusers/transformers path."""
    if component == "unet":
        return unet_kohya_name(path, family)
    return f"{KOHYA_PREFIX_OF[component]}_{path_to_kohya_rest(classic_clip_path(path))}"


def classic_clip_path(path: str) -> str:
    """transformers 5 dropped CLIPTextModel's `text_model` wrapper (CLIPTextModelWithProjection keeps it);
    every LoRA layout and loader names the layers by the classic path, `text_model.encoder.layers.N…`."""
    if path.startswith(("text_model.", "text_projection")):
        return path
    return "text_model." + path


def canonical_kohya_name(name: str, family: str) -> str:
    """SDXL UNet names written with diffusers paths → the SGM names sd-scripts writes; others unchanged."""
    component, rest = split_kohya_name(name)
    if family != "sdxl" or component != "unet" or is_sgm_unet_rest(rest):
        return name
    return unet_kohya_name(kohya_rest_to_path(rest), family)
