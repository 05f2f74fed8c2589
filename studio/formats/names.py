"""kohya module names: the one place that knows the prefixes and how a module path becomes a name.

A kohya name is a target prefix (`lora_unet`, `lora_te`, `lora_te1`, `lora_te2`) plus the module path with
every dot turned into an underscore, because A1111 splits each key at its first dot. Going back is ambiguous
(`to_q` vs `to.q`); like the loaders, we resolve it with the identifiers that really occur in UNet and CLIP
paths, so an SDXL name written with diffusers paths (ComfyUI, Forge and diffusers accept them) can be
rewritten with the SGM block names sd-scripts and A1111 use (`lora_unet_input_blocks_4_1_transformer_…`).
"""

from __future__ import annotations

import re

from studio.errors import LoraFormatError

#: the one prefix table: component (`unet`, `te` = the only text encoder, SDXL's `te1`/`te2`) → kohya prefix.
#: te1/te2 come before te, because `lora_te1_…` also starts with `lora_te`.
KOHYA_PREFIX_OF = {"unet": "lora_unet", "te1": "lora_te1", "te2": "lora_te2", "te": "lora_te"}
KOHYA_PREFIXES = tuple((prefix + "_", component) for component, prefix in KOHYA_PREFIX_OF.items())
COMPONENT_OF_PREFIX = {prefix: component for component, prefix in KOHYA_PREFIX_OF.items()}

# identifiers containing underscores that occur in UNet / CLIP module paths
_COMPOUNDS = (
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "to_q", "to_k", "to_v", "to_out",
    "proj_in", "proj_out", "conv_shortcut", "time_emb_proj", "conv_in", "conv_out", "conv_norm_out",
    "time_embedding", "linear_1", "linear_2", "add_embedding", "add_time_proj", "text_model", "self_attn",
    "q_proj", "k_proj", "v_proj", "out_proj", "final_layer_norm", "layer_norm1", "layer_norm2",
    "token_embedding", "position_embedding", "text_projection", "input_blocks", "output_blocks",
    "middle_block", "in_layers", "out_layers", "emb_layers", "skip_connection", "time_embed", "label_emb",
)
_LONGEST_FIRST = sorted(_COMPOUNDS, key=lambda c: c.count("_"), reverse=True)
# a whole compound starting a token (kept as it is), or an underscore (a dot in the module path)
_COMPOUND_OR_SEPARATOR = re.compile(rf"(?:^|(?<=_))({'|'.join(_LONGEST_FIRST)})(?=_|$)|_")
_SGM_UNET = re.compile(r"^(input_blocks|output_blocks|middle_block)_")


def te_prefixes(family: str) -> tuple[str, ...]:
    """The text encoders' prefixes, in the order the engine lists the encoders."""
    return (KOHYA_PREFIX_OF["te1"], KOHYA_PREFIX_OF["te2"]) if family == "sdxl" else (KOHYA_PREFIX_OF["te"],)


def target_of(name: str) -> str:
    """The kohya prefix a module name starts with (`lora_unet`, `lora_te1`, …), or `other`."""
    return next((prefix[:-1] for prefix, _ in KOHYA_PREFIXES if name.startswith(prefix)), "other")


def is_kohya_name(name: str) -> bool:
    return target_of(name) != "other"


def kohya_name_for(component: str, path: str, family: str) -> str:
    """kohya name of a module given by component (`unet`, `te`, `te1`, `te2`) and diffusers/transformers path:
    the SGM block path for an SDXL UNet (sd-scripts, A1111), the classic CLIP path for a text encoder."""
    if component == "unet":
        path = diffusers_to_sgm(path) if family == "sdxl" else path
    else:
        path = classic_clip_path(path)
    return f"{KOHYA_PREFIX_OF[component]}_{path.replace('.', '_')}"


def canonical_kohya_name(name: str, family: str) -> str:
    """SDXL UNet names written with diffusers paths → the SGM names sd-scripts writes; others unchanged."""
    rest = name.removeprefix("lora_unet_")
    if family != "sdxl" or rest == name or _SGM_UNET.match(rest):
        return name
    return kohya_name_for("unet", kohya_rest_to_path(rest), family)


def classic_clip_path(path: str) -> str:
    """transformers 5 dropped CLIPTextModel's `text_model` wrapper (CLIPTextModelWithProjection keeps it);
    every LoRA layout and loader names the layers by the classic path, `text_model.encoder.layers.N…`."""
    if path.startswith(("text_model.", "text_projection")):
        return path
    return "text_model." + path


def kohya_rest_to_path(rest: str) -> str:
    """`down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0` → `down_blocks.1.…attn1.to_out.0`."""
    return _COMPOUND_OR_SEPARATOR.sub(lambda m: m[1] or ".", rest)


def diffusers_to_sgm(path: str) -> str:
    """`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` → `input_blocks.4.1.transformer_blocks.0.attn1.to_q`."""
    from studio.models.original_layout import SDXL_STRUCTURE, unet_path_to_original  # imports torch

    try:
        return unet_path_to_original(path, SDXL_STRUCTURE)
    except ValueError:
        raise LoraFormatError(f"`{path}` is not a module of the SDXL UNet") from None
