"""Single-file checkpoints as diffusers' own converters write them, from our tiny diffusers models.

`scripts/convert_diffusers_to_original_stable_diffusion.py` (SD 1.x / 2.x) and
`scripts/convert_diffusers_to_original_sdxl.py` are what people use to turn a diffusers folder into a `.ckpt`
/ `.safetensors`; their logic is reproduced here, independently of `studio.models.original_layout` (whose
round trip with our own writer proves nothing about files made by others):

- the UNet by string replacement with (original, diffusers) prefix tables built per block, the resnet
  sub-names replaced first (`norm1` → `in_layers.0`, …), then the block prefixes
  (`down_blocks.1.attentions.0.` → `input_blocks.4.1.`); SDXL adds `add_embedding` → `label_emb.0`;
- the VAE likewise (`encoder.down_blocks.0.resnets.1.` → `encoder.down.0.block.1.`, up blocks numbered in
  reverse), attention `to_q/to_k/to_v/to_out.0` → `q/k/v/proj_out` reshaped to 1×1 convs;
- the text encoders: OpenAI CLIP keys kept as they are under `cond_stage_model.transformer.` (SDXL:
  `conditioner.embedders.0.transformer.`); OpenCLIP (SD 2.x, SDXL's second) relabelled and q/k/v fused into
  `in_proj_weight`/`in_proj_bias`; SDXL's `text_projection.weight` is left as the script leaves it;
- saved as `{"state_dict": ...}` with `torch.save` (zip, or the legacy format with
  `_use_new_zipfile_serialization=False` as older torch wrote it), or as `.safetensors` without metadata;
  `--half` casts every tensor to fp16.

On top, the variants issue 16 lists: an LDM EMA copy (`model_ema.<key without dots>`), a 9-channel
inpainting UNet, an SDXL refiner's key set, and SD3 / SD3.5 / Flux key sets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

_UNET_TOP = [("time_embed.0.", "time_embedding.linear_1."), ("time_embed.2.", "time_embedding.linear_2."),
             ("input_blocks.0.0.", "conv_in."), ("out.0.", "conv_norm_out."), ("out.2.", "conv_out."),
             ("label_emb.0.0.", "add_embedding.linear_1."), ("label_emb.0.2.", "add_embedding.linear_2.")]
_UNET_RESNET = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"),
                ("out_layers.3", "conv2"), ("emb_layers.1", "time_emb_proj"), ("skip_connection", "conv_shortcut")]


def _unet_layer_map(unet_config: dict[str, Any]) -> list[tuple[str, str]]:
    """(original prefix, diffusers prefix), as the scripts' loops build them (they hard-code SD's 4 blocks /
    SDXL's 3; here the count and which blocks have attention come from the config)."""
    down = [("CrossAttn" in t) for t in unet_config["down_block_types"]]
    up = [("CrossAttn" in t) for t in unet_config["up_block_types"]]
    n = len(down)
    out = []
    for i in range(n):
        for j in range(2):
            out.append((f"input_blocks.{3 * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down[i]:
                out.append((f"input_blocks.{3 * i + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
        for j in range(3):
            out.append((f"output_blocks.{3 * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up[i]:
                out.append((f"output_blocks.{3 * i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            out.append((f"input_blocks.{3 * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
            out.append((f"output_blocks.{3 * i + 2}.{2 if up[i] else 1}.", f"up_blocks.{i}.upsamplers.0."))
    out.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        out.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    return out


def convert_unet(state: dict[str, torch.Tensor], unet_config: dict[str, Any]) -> dict[str, torch.Tensor]:
    mapping = {k: k for k in state}
    for original, diffusers in _UNET_TOP:
        for k in mapping:
            if k.startswith(diffusers):
                mapping[k] = original + k[len(diffusers):]
    for k, v in mapping.items():
        if "resnets" in k:
            for original, diffusers in _UNET_RESNET:
                v = v.replace(diffusers, original)
            mapping[k] = v
    layers = _unet_layer_map(unet_config)
    for k, v in mapping.items():
        for original, diffusers in layers:
            v = v.replace(diffusers, original)
        mapping[k] = v
    return {"model.diffusion_model." + v: state[k] for k, v in mapping.items()}


def _vae_map(n: int) -> list[tuple[str, str]]:
    out = [("nin_shortcut", "conv_shortcut"), ("norm_out", "conv_norm_out"), ("mid.attn_1.", "mid_block.attentions.0.")]
    for i in range(n):
        for j in range(2):
            out.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        if i < n - 1:
            out.append((f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."))
            out.append((f"up.{n - 1 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."))
        for j in range(3):
            out.append((f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
    for i in range(2):
        out.append((f"mid.block_{i + 1}.", f"mid_block.resnets.{i}."))
    return out


_VAE_ATTN = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0.")]


def convert_vae(state: dict[str, torch.Tensor], n_blocks: int) -> dict[str, torch.Tensor]:
    table = _vae_map(n_blocks)
    mapping = {}
    for k in state:
        v = k
        for original, diffusers in table:
            v = v.replace(diffusers, original)
        if "attentions" in k:
            for original, diffusers in _VAE_ATTN:
                v = v.replace(diffusers, original)
        mapping[k] = v
    out = {}
    for k, v in mapping.items():
        tensor = state[k]
        if any(f"mid.attn_1.{w}.weight" in v for w in ("q", "k", "v", "proj_out")) and tensor.dim() == 2:
            tensor = tensor.reshape(*tensor.shape, 1, 1)
        out["first_stage_model." + v] = tensor
    return out


def _hf_clip_state(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's keys as a saved `pytorch_model.bin` has them (`text_model.` first; transformers 5 drops it)."""
    state = encoder.state_dict()
    return {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v for k, v in state.items()}


_OPENCLIP = [("transformer.resblocks.", "text_model.encoder.layers."), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
             (".c_fc.", ".fc1."), (".c_proj.", ".fc2."), (".attn", ".self_attn"),
             ("ln_final.", "text_model.final_layer_norm."),
             ("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
             ("positional_embedding", "text_model.embeddings.position_embedding.weight")]
_OPENCLIP_RE = re.compile("|".join(re.escape(d) for _, d in _OPENCLIP))
_OPENCLIP_SUB = {d: o for o, d in _OPENCLIP}


def convert_openclip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[str, str], list[torch.Tensor | None]] = {}
    for k, v in state.items():
        found = re.search(r"\.self_attn\.([qkv])_proj\.(weight|bias)$", k)
        if found:
            pre = k[:found.start()] + ".self_attn"
            fused.setdefault((pre, found.group(2)), [None, None, None])["qkv".index(found.group(1))] = v
            continue
        out[_OPENCLIP_RE.sub(lambda m: _OPENCLIP_SUB[m.group(0)], k)] = v
    for (pre, kind), parts in fused.items():
        assert all(p is not None for p in parts), pre
        out[_OPENCLIP_RE.sub(lambda m: _OPENCLIP_SUB[m.group(0)], pre) + f".in_proj_{kind}"] = torch.cat(parts)
    return out


def official_state_dict(pipe, family: str) -> dict[str, torch.Tensor]:
    """The whole original-layout state dict the converter script of `family` writes."""
    state = convert_unet(pipe.unet.state_dict(), dict(pipe.unet.config))
    state.update(convert_vae(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels)))
    te = {k: v for k, v in _hf_clip_state(pipe.text_encoder).items() if not k.endswith("position_ids")}
    if family == "sdxl":
        state.update({"conditioner.embedders.0.transformer." + k: v for k, v in te.items()})
        te2 = {k: v for k, v in _hf_clip_state(pipe.text_encoder_2).items() if not k.endswith("position_ids")}
        state.update({"conditioner.embedders.1.model." + k: v for k, v in convert_openclip(te2).items()})
    elif family in ("sd2", "sd2-v"):
        state.update({"cond_stage_model.model." + k: v for k, v in convert_openclip(te).items()})
    else:
        state.update({"cond_stage_model.transformer." + k: v for k, v in te.items()})
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def save(state: dict[str, torch.Tensor], path: Path, *, fmt: str = "zip", half: bool = False) -> Path:
    """`fmt`: `zip` (torch.save), `legacy` (torch.save's pre-1.6 format) or `safetensors` (no metadata)."""
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.clone().contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path, _use_new_zipfile_serialization=fmt == "zip")
    return path


def with_ema(state: dict[str, torch.Tensor], ema_unet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` plus an LDM `LitEma` copy of a UNet: `model_ema.<key after "model." without dots>`."""
    out = dict(state)
    for key, value in ema_unet_state.items():
        assert key.startswith("model.diffusion_model.")
        out["model_ema." + "".join(key.split(".")[1:])] = value
    out["model_ema.decay"] = torch.tensor(0.9999)
    out["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    return out


def as_inpainting(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The UNet's first conv widened to 9 input channels (latents, mask, masked-image latents)."""
    out = dict(state)
    w = out["model.diffusion_model.input_blocks.0.0.weight"]
    out["model.diffusion_model.input_blocks.0.0.weight"] = torch.cat([w, torch.zeros(w.shape[0], 5, *w.shape[2:])], 1)
    return out


def as_refiner(sdxl_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An SDXL refiner's key set: OpenCLIP-G alone, as `conditioner.embedders.0.model.`, and label_emb."""
    out = {k: v for k, v in sdxl_state.items() if not k.startswith("conditioner.")}
    for k, v in sdxl_state.items():
        if k.startswith("conditioner.embedders.1.model."):
            out["conditioner.embedders.0.model." + k.removeprefix("conditioner.embedders.1.model.")] = v
    return out


def sd3_state(*, qk_norm: bool = False, blocks: int = 2) -> dict[str, torch.Tensor]:
    """Key layout of an SD3 (or, with `qk_norm`, SD 3.5) single file: MMDiT joint blocks, three text encoders."""
    z = torch.zeros(2, 2)
    out = {"model.diffusion_model.x_embedder.proj.weight": torch.zeros(8, 16, 2, 2),
           "model.diffusion_model.context_embedder.weight": z, "model.diffusion_model.pos_embed": z,
           "first_stage_model.decoder.conv_in.weight": torch.zeros(4, 16, 3, 3),
           "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight": torch.zeros(2),
           "text_encoders.t5xxl.transformer.shared.weight": z}
    for i in range(blocks):
        for side in ("x_block", "context_block"):
            out[f"model.diffusion_model.joint_blocks.{i}.{side}.attn.qkv.weight"] = z
            if qk_norm:
                out[f"model.diffusion_model.joint_blocks.{i}.{side}.attn.ln_q.weight"] = torch.zeros(2)
    return out


def flux_state(*, prefixed: bool = True) -> dict[str, torch.Tensor]:
    """Key layout of a Flux.1 transformer file (as released: no prefix; as ComfyUI saves: `model.diffusion_model.`)."""
    p = "model.diffusion_model." if prefixed else ""
    z = torch.zeros(2, 2)
    return {f"{p}img_in.weight": z, f"{p}txt_in.weight": z, f"{p}double_blocks.0.img_attn.qkv.weight": z,
            f"{p}single_blocks.0.linear1.weight": z, f"{p}final_layer.linear.weight": z}
