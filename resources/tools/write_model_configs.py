"""Write the config-only diffusers folders in `resources/configs/<family>/` (run once; output is committed).

`from_single_file` needs a diffusers-format config for every component, and without one it fetches the
family's configs from the hub. These are the published configs of the reference models, written from
the facts below, so that loading a single-file checkpoint never touches the network:

- sd1:   runwayml/stable-diffusion-v1-5 (UNet 860 M, CLIP ViT-L/14 text encoder, PNDM scheduler)
- sd2:   stabilityai/stable-diffusion-2-1-base (512 px, epsilon; OpenCLIP ViT-H/14 text encoder, 23 of its 24
         layers as diffusers keeps them, pad token "!")
- sd2-v: stabilityai/stable-diffusion-2-1 (768 px, v-prediction, attention upcast to fp32)
- sdxl:  stabilityai/stable-diffusion-xl-base-1.0 (CLIP ViT-L + OpenCLIP ViT-bigG with projection, 3-block
         UNet with transformer depths 1/2/10 and text_time conditioning, VAE scale 0.13025)

Tokenizers: every folder gets only `tokenizer_config.json`/`special_tokens_map.json` (the pad token is
the one thing that differs); the shared 49,408-token vocabulary lives once in `resources/tokenizers/clip/`
(see `build_clip_tokenizer.py`), and `studio.models.configs.load_tokenizer` joins the two.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "configs"

SCALED_LINEAR = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                 "num_train_timesteps": 1000, "trained_betas": None, "steps_offset": 1,
                 "set_alpha_to_one": False, "skip_prk_steps": True, "clip_sample": False}

SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
UNET_COMMON = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "center_input_sample": False,
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "out_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
}


def vae(sample_size: int, scaling_factor: float, force_upcast: bool) -> dict:
    return {
        "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
        "norm_num_groups": 32, "sample_size": sample_size, "scaling_factor": scaling_factor,
        "force_upcast": force_upcast,
    }


def clip_text(hidden: int, intermediate: int, heads: int, layers: int, act: str, projection: int,
              with_projection: bool = False) -> dict:
    return {
        "architectures": ["CLIPTextModelWithProjection" if with_projection else "CLIPTextModel"],
        "model_type": "clip_text_model", "vocab_size": 49408, "max_position_embeddings": 77,
        "hidden_size": hidden, "intermediate_size": intermediate, "num_attention_heads": heads,
        "num_hidden_layers": layers, "hidden_act": act, "projection_dim": projection,
        "layer_norm_eps": 1e-05, "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0,
        "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    }


CLIP_L = clip_text(768, 3072, 12, 12, "quick_gelu", 768)
OPENCLIP_H = clip_text(1024, 4096, 16, 23, "gelu", 512)
OPENCLIP_BIGG = clip_text(1280, 5120, 20, 32, "gelu", 1280, with_projection=True)


def tokenizer(pad: str) -> dict:
    return {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
            "pad_token": pad, "errors": "replace", "add_prefix_space": False,
            "clean_up_tokenization_spaces": True}


def sd_index(scheduler: str) -> dict:
    return {"_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
            "safety_checker": [None, None], "requires_safety_checker": False,
            "scheduler": ["diffusers", scheduler], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"]}


def sd2_unet(sample_size: int, upcast: bool) -> dict:
    return {**UNET_COMMON, "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
            "cross_attention_dim": 1024, "down_block_types": SD_DOWN, "up_block_types": SD_UP,
            "use_linear_projection": True, "upcast_attention": upcast, "dual_cross_attention": False,
            "num_class_embeds": None, "only_cross_attention": False, "sample_size": sample_size}


FAMILIES: dict[str, dict[str, dict]] = {
    "sd1": {
        "model_index.json": sd_index("PNDMScheduler"),
        "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler", **SCALED_LINEAR,
                                            "prediction_type": "epsilon"},
        "unet/config.json": {**UNET_COMMON, "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
                             "cross_attention_dim": 768, "down_block_types": SD_DOWN, "up_block_types": SD_UP,
                             "sample_size": 64},
        "vae/config.json": vae(512, 0.18215, False),
        "text_encoder/config.json": CLIP_L,
        "tokenizer/tokenizer_config.json": tokenizer("<|endoftext|>"),
    },
    "sd2": {
        "model_index.json": sd_index("PNDMScheduler"),
        "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler", **SCALED_LINEAR,
                                            "prediction_type": "epsilon"},
        "unet/config.json": sd2_unet(64, False),
        "vae/config.json": vae(512, 0.18215, False),
        "text_encoder/config.json": OPENCLIP_H,
        "tokenizer/tokenizer_config.json": tokenizer("!"),
    },
    "sd2-v": {
        "model_index.json": sd_index("DDIMScheduler"),
        "scheduler/scheduler_config.json": {"_class_name": "DDIMScheduler", **SCALED_LINEAR,
                                            "prediction_type": "v_prediction"},
        "unet/config.json": sd2_unet(96, True),
        "vae/config.json": vae(768, 0.18215, False),
        "text_encoder/config.json": OPENCLIP_H,
        "tokenizer/tokenizer_config.json": tokenizer("!"),
    },
    "sdxl": {
        "model_index.json": {
            "_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers",
                                                                                 "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
        "scheduler/scheduler_config.json": {
            "_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "trained_betas": None,
            "interpolation_type": "linear", "prediction_type": "epsilon", "sample_max_value": 1.0,
            "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
            "use_karras_sigmas": False, "clip_sample": False},
        "unet/config.json": {
            **UNET_COMMON, "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
            "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
            "block_out_channels": [320, 640, 1280], "cross_attention_dim": 2048,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "mid_block_type": "UNetMidBlock2DCrossAttn", "projection_class_embeddings_input_dim": 2816,
            "sample_size": 128, "transformer_layers_per_block": [1, 2, 10], "use_linear_projection": True,
            "upcast_attention": None, "dual_cross_attention": False, "only_cross_attention": False},
        "vae/config.json": vae(1024, 0.13025, True),
        "text_encoder/config.json": CLIP_L,
        "text_encoder_2/config.json": OPENCLIP_BIGG,
        "tokenizer/tokenizer_config.json": tokenizer("<|endoftext|>"),
        "tokenizer_2/tokenizer_config.json": tokenizer("!"),
    },
}


def main() -> None:
    for family, files in FAMILIES.items():
        for rel, data in files.items():
            path = OUT / family / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            if rel.endswith("tokenizer_config.json"):
                special = {k: data[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
                (path.parent / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n",
                                                                     encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
