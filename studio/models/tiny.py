"""Tiny random-initialised models with the real SD 1.x / SD 2.x / SDXL block structure.

They load, train and sample in seconds on a CPU, and their module names match real checkpoints
(`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`, …), so everything that works on them —
LoRA targeting, key naming, export, loading in diffusers — works on the real models. The demo project
and the whole test suite use them; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

Family = Literal["sd1", "sd2", "sd2-v", "sdxl"]


def byte_symbols() -> list[str]:
    """The printable stand-ins byte-level BPE (GPT-2, CLIP) uses for the 256 byte values, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_byte_level_tokenizer(folder: Path, *, pad_token: str = "<|endoftext|>") -> Path:
    """A CLIP-style BPE tokenizer with the 256 byte symbols (+ `</w>` forms) and no merges: 514 tokens,
    written as files because transformers 5 silently ignores a constructor's `vocab_file=`/`merges_file=`."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = byte_symbols()
    words = [*symbols, *(s + "</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"]
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": pad_token}
    (folder / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}, ensure_ascii=False),
                                       encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, **special, "do_lower_case": True,
    }), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    return folder


def _text_encoder(hidden: int, projection: int | None, seed: int, *, act: str = "quick_gelu"):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=514, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act=act,
        bos_token_id=512, eos_token_id=513, pad_token_id=513,
        projection_dim=projection or hidden,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=8,
    )


def build_tiny_pipeline(family: Family = "sd1", seed: int = 0):
    import tempfile

    from diffusers import (DDPMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline,
                           StableDiffusionXLPipeline, UNet2DConditionModel)
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_byte_level_tokenizer(Path(tmp) / "tok"))
        tokenizer_2 = (CLIPTokenizer.from_pretrained(write_byte_level_tokenizer(Path(tmp) / "tok2", pad_token="!"))
                       if family == "sdxl" else None)
    prediction = "v_prediction" if family == "sd2-v" else "epsilon"
    sched_kwargs = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        num_train_timesteps=1000, prediction_type=prediction, steps_offset=1)
    unet_kwargs = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=16)
    torch.manual_seed(seed)
    if family == "sdxl":
        unet = UNet2DConditionModel(
            **unet_kwargs, block_out_channels=(32, 64, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 2), attention_head_dim=(2, 4, 4), cross_attention_dim=64,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=8 * 6 + 32,
        )
        return StableDiffusionXLPipeline(
            vae=_vae(seed + 1), text_encoder=_text_encoder(32, None, seed + 2, act="quick_gelu"),
            text_encoder_2=_text_encoder(32, 32, seed + 3, act="gelu"),
            tokenizer=tokenizer, tokenizer_2=tokenizer_2,
            unet=unet, scheduler=EulerDiscreteScheduler(**sched_kwargs),
        )
    sd2 = family in ("sd2", "sd2-v")
    unet = UNet2DConditionModel(
        **unet_kwargs, block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        attention_head_dim=(2, 2, 4, 4) if sd2 else 8, cross_attention_dim=32,
        use_linear_projection=sd2,
    )
    return StableDiffusionPipeline(
        vae=_vae(seed + 1), text_encoder=_text_encoder(32, None, seed + 2, act="gelu" if sd2 else "quick_gelu"),
        tokenizer=tokenizer, unet=unet, scheduler=DDPMScheduler(**sched_kwargs, clip_sample=False),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def save_tiny_model(folder: str | Path, family: Family = "sd1", seed: int = 0):
    pipe = build_tiny_pipeline(family, seed)
    pipe.save_pretrained(Path(folder), safe_serialization=True)
    return pipe
