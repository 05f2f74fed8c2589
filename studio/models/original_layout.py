"""diffusers ↔ original (CompVis for SD 1.x/2.x, SGM for SDXL) names for UNet, VAE and text encoders.

Single-file checkpoints, the WebUIs and sd-scripts' SDXL LoRAs all use the original module names; our
models are diffusers modules, and this is the one place the two namings meet. diffusers ships only the
original → diffusers direction; the reverse follows its `scripts/convert_diffusers_to_original_*` and
sd-scripts' `sdxl_model_util.py`, and the round trip through diffusers' `from_single_file` is exact.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_TE_PREFIX = "cond_stage_model.transformer.text_model."
SD2_TE_PREFIX = "cond_stage_model.model."
SDXL_TE1_PREFIX = "conditioner.embedders.0.transformer.text_model."
SDXL_TE2_PREFIX = "conditioner.embedders.1.model."

# metadata keys we write into checkpoints we save (read back by `studio.models.detect`)
META_FAMILY = "studio.family"
META_CONFIGS = "studio.diffusers_configs"


@dataclass(frozen=True)
class UnetStructure:
    """What the name mapping needs to know about a UNet: resnets per block and which blocks have attention."""

    layers_per_block: int
    down_attention: tuple[bool, ...]
    up_attention: tuple[bool, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UnetStructure:
        layers = config.get("layers_per_block", 2)
        if not isinstance(layers, int):
            raise ValueError(f"per-block layer counts ({layers}) have no original-layout naming")
        return cls(layers_per_block=layers,
                   down_attention=tuple("CrossAttn" in t for t in config["down_block_types"]),
                   up_attention=tuple("CrossAttn" in t for t in config["up_block_types"]))


SDXL_STRUCTURE = UnetStructure(2, (False, True, True), (True, True, False))

_RESNET = {("norm1",): ("in_layers", "0"), ("conv1",): ("in_layers", "2"),
           ("time_emb_proj",): ("emb_layers", "1"), ("norm2",): ("out_layers", "0"),
           ("conv2",): ("out_layers", "3"), ("conv_shortcut",): ("skip_connection",)}
_TOP = {("time_embedding", "linear_1"): ("time_embed", "0"),
        ("time_embedding", "linear_2"): ("time_embed", "2"),
        ("add_embedding", "linear_1"): ("label_emb", "0", "0"),
        ("add_embedding", "linear_2"): ("label_emb", "0", "2"), ("conv_in",): ("input_blocks", "0", "0"),
        ("conv_norm_out",): ("out", "0"), ("conv_out",): ("out", "2")}
_Names = dict[tuple[str, ...], tuple[tuple[str, ...], dict]]


@functools.lru_cache(maxsize=16)
def _block_names(structure: UnetStructure) -> tuple[_Names, _Names]:
    """(diffusers → original, original → diffusers) for every block a UNet of this structure has: each
    block path maps to the other naming's path and to the renaming of what follows it (a resnet's layers)."""
    layers, per = structure.layers_per_block, structure.layers_per_block + 1
    pairs = [(head, original, {}) for head, original in _TOP.items()]
    pairs += [(("mid_block", "attentions", "0"), ("middle_block", "1"), {}),
              (("mid_block", "resnets", "0"), ("middle_block", "0"), _RESNET),
              (("mid_block", "resnets", "1"), ("middle_block", "2"), _RESNET)]
    for i, attention in enumerate(structure.down_attention):
        for j in range(layers):
            n = str(1 + per * i + j)
            pairs.append((("down_blocks", str(i), "resnets", str(j)), ("input_blocks", n, "0"), _RESNET))
            if attention:
                pairs.append((("down_blocks", str(i), "attentions", str(j)), ("input_blocks", n, "1"), {}))
        if i < len(structure.down_attention) - 1:
            pairs.append((("down_blocks", str(i), "downsamplers", "0", "conv"),
                          ("input_blocks", str(per * (i + 1)), "0", "op"), {}))
    for i, attention in enumerate(structure.up_attention):
        for j in range(per):  # up blocks have one resnet more than down blocks
            n = str(per * i + j)
            pairs.append((("up_blocks", str(i), "resnets", str(j)), ("output_blocks", n, "0"), _RESNET))
            if attention:
                pairs.append((("up_blocks", str(i), "attentions", str(j)), ("output_blocks", n, "1"), {}))
        if i < len(structure.up_attention) - 1:  # after the attention, if the block has one
            pairs.append((("up_blocks", str(i), "upsamplers", "0"),
                          ("output_blocks", str(per * i + layers), "2" if attention else "1"), {}))
    back = {v: k for k, v in _RESNET.items()}
    return ({a: (b, inner) for a, b, inner in pairs}, {b: (a, inner and back) for a, b, inner in pairs})


def _rename(path: str, parts: list[str], names: _Names, direction: str) -> str:
    for k in range(min(len(parts), 5), 0, -1):
        if tuple(parts[:k]) in names:
            head, inner = names[tuple(parts[:k])]
            rest = parts[k:]
            if inner:
                n = next((n for n in (1, 2) if tuple(rest[:n]) in inner), None)
                if n is None:
                    break
                rest = [*inner[tuple(rest[:n])], *rest[n:]]
            return ".".join([*head, *rest])
    raise ValueError(f"no {direction} name for UNet path `{path}`")


def unet_path_to_original(path: str, structure: UnetStructure) -> str:
    """`down_blocks.1.attentions.0.proj_in` → `input_blocks.4.1.proj_in` (no `model.diffusion_model.` prefix)."""
    return _rename(path, path.split("."), _block_names(structure)[0], "original")


def unet_path_from_original(path: str, structure: UnetStructure) -> str:
    """`input_blocks.4.1.proj_in` → `down_blocks.1.attentions.0.proj_in`; the inverse of `unet_path_to_original`."""
    return _rename(path, path.removeprefix(UNET_PREFIX).split("."), _block_names(structure)[1], "diffusers")


def vae_path_to_original(path: str, n_blocks: int) -> str:
    """`decoder.up_blocks.0.resnets.1.conv_shortcut.weight` → `decoder.up.3.block.1.nin_shortcut.weight`."""
    parts = ["nin_shortcut" if p == "conv_shortcut" else p for p in path.split(".")]  # in resnets only
    if parts[0] not in ("encoder", "decoder"):
        return path  # quant_conv, post_quant_conv
    side, head, tail = parts[0], parts[1], parts[2:]
    if head == "conv_norm_out":
        return ".".join([side, "norm_out"] + tail)
    if head in ("down_blocks", "up_blocks"):
        i, kind, j, inner = int(tail[0]), tail[1], tail[2], tail[3:]
        down = head == "down_blocks"
        where = [side, "down" if down else "up", str(i if down else n_blocks - 1 - i)]
        return ".".join(where + (["block", j] if kind == "resnets" else [kind.removesuffix("rs")]) + inner)
    if head == "mid_block":
        kind, j, inner = tail[0], int(tail[1]), tail[2:]
        if kind == "resnets":
            return ".".join([side, "mid", f"block_{j + 1}"] + inner)
        renamed = {"group_norm": ["norm"], "to_q": ["q"], "to_k": ["k"], "to_v": ["v"]}
        if inner[:2] == ["to_out", "0"]:
            inner = ["proj_out"] + inner[2:]
        elif inner[0] in renamed:
            inner = renamed[inner[0]] + inner[1:]
        return ".".join([side, "mid", "attn_1"] + inner)
    return path  # conv_in, conv_out

_OPENCLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                   "self_attn.out_proj": "attn.out_proj"}
_OPENCLIP_TOP = {"embeddings.token_embedding.weight": "token_embedding.weight",
                 "embeddings.position_embedding.weight": "positional_embedding",
                 "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}


def clip_to_original(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """HF CLIP layout (SD 1.x, SDXL's first encoder): `<prefix>embeddings.token_embedding.weight` from
    `[text_model.]embeddings.token_embedding.weight` (transformers 5.x dropped the wrapper)."""
    bare = {key.removeprefix("text_model."): value for key, value in state.items()}
    return {prefix + key: value for key, value in bare.items() if key != "embeddings.position_ids"}


def openclip_to_original(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OpenCLIP layout (SD 2.x, SDXL's second encoder): fused q/k/v `in_proj`, transposed `text_projection`."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for raw_key, value in state.items():
        key = raw_key.removeprefix("text_model.")
        if key == "embeddings.position_ids":
            continue
        if key in _OPENCLIP_TOP:
            out[prefix + _OPENCLIP_TOP[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif key.startswith("encoder.layers."):
            _, _, index, inner = key.split(".", 3)
            module, param = inner.rsplit(".", 1)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                fused.setdefault((int(index), param), {})[module[10]] = value
                continue
            if module not in _OPENCLIP_LAYER:
                raise ValueError(f"no OpenCLIP name for text encoder key `{raw_key}`")
            out[f"{prefix}transformer.resblocks.{index}.{_OPENCLIP_LAYER[module]}.{param}"] = value
        else:
            raise ValueError(f"no OpenCLIP name for text encoder key `{raw_key}`")
    for (index, param), qkv in sorted(fused.items()):
        if set(qkv) != {"q", "k", "v"}:
            raise ValueError(f"text encoder layer {index} lacks one of q/k/v {param}")
        out[f"{prefix}transformer.resblocks.{index}.attn.in_proj_{param}"] = torch.cat([qkv["q"], qkv["k"], qkv["v"]])
    return out


#: (prefix, layout) per text encoder, in the order of `Components.text_encoders`; SD 1.x is the default
_TEXT_ENCODERS = {"sdxl": ((SDXL_TE1_PREFIX, "clip"), (SDXL_TE2_PREFIX, "openclip")),
                  "sd2": ((SD2_TE_PREFIX, "openclip"),), "sd2-v": ((SD2_TE_PREFIX, "openclip"),)}


def original_state_dict(family: str, unet: torch.nn.Module, vae: torch.nn.Module,
                        text_encoders: tuple[torch.nn.Module, ...] | list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    """All weights of a diffusers model as one original-layout state dict (tensors shared, not copied)."""
    structure = UnetStructure.from_config(unet.config)
    out = {UNET_PREFIX + unet_path_to_original(key, structure): value
           for key, value in unet.state_dict().items()}
    n_blocks = len(vae.config.block_out_channels)
    for key, value in vae.state_dict().items():
        original = vae_path_to_original(key, n_blocks)
        if ".mid.attn_1." in original and value.dim() == 2 and original.endswith(
                ("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value[:, :, None, None]  # the original VAE's attention uses 1×1 convs
        out[VAE_PREFIX + original] = value
    prefixes = _TEXT_ENCODERS.get(family, ((SD1_TE_PREFIX, "clip"),))
    if len(prefixes) != len(text_encoders):
        raise ValueError(f"{family} has {len(prefixes)} text encoder(s), got {len(text_encoders)}")
    for (prefix, layout), encoder in zip(prefixes, text_encoders):
        convert = openclip_to_original if layout == "openclip" else clip_to_original
        out.update(convert(encoder.state_dict(), prefix))
    return out


def diffusers_configs(unet: Any, vae: Any, text_encoders: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """The component configs as plain JSON-able dicts, to embed in checkpoints we write."""
    configs: dict[str, Any] = {"unet": dict(unet.config), "vae": dict(vae.config)}
    for i, encoder in enumerate(text_encoders):
        configs["text_encoder" if i == 0 else f"text_encoder_{i + 1}"] = encoder.config.to_dict()
    # where the model was loaded from is no part of its architecture (and may be a Path)
    configs = {name: {k: v for k, v in cfg.items() if k not in ("_name_or_path", "_commit_hash")}
               for name, cfg in configs.items()}
    return json.loads(json.dumps(configs, default=lambda o: list(o) if isinstance(o, (tuple, set)) else str(o)))


def save_original_checkpoint(path: str | Path, family: str, unet: Any, vae: Any, text_encoders: Any, *,
                             tokenizers: Any = (), prediction: str = "epsilon", dtype: torch.dtype | None = None,
                             metadata: Mapping[str, str] | None = None,
                             extra: Mapping[str, torch.Tensor] | None = None) -> Path:
    """A diffusers model as a single-file original-layout `.safetensors`, written atomically. The metadata
    records the exact component configs (and non-CLIP tokenizers), so the file loads back exactly even when
    its sizes differ from the reference model's; `extra` holds source keys the diffusers model lacks (such as
    SD 2.x's unused last text-encoder layer)."""
    from safetensors.torch import save_file

    from studio.fileio import atomic_write_with
    from studio.models.configs import tokenizer_metadata

    tensors = {**(extra or {}), **original_state_dict(family, unet, vae, text_encoders)}
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in tensors.items()}
    meta = {META_FAMILY: family, **tokenizer_metadata(tokenizers),
            META_CONFIGS: json.dumps(diffusers_configs(unet, vae, text_encoders), separators=(",", ":")),
            "modelspec.sai_model_spec": "1.0.1", "modelspec.architecture": _ARCHITECTURES[family],
            "modelspec.prediction_type": "v" if prediction == "v_prediction" else "epsilon",
            **dict(metadata or {})}
    path = Path(path)
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path


_ARCHITECTURES = {"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512", "sd2-v": "stable-diffusion-v2-768-v",
                  "sdxl": "stable-diffusion-xl-v1-base"}
