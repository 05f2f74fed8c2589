"""Loading a base model's parts for training and sampling, offline.

Training needs the parts separately (tokenizers, text encoders, VAE, UNet, noise scheduler), as the
diffusers training recipe loads them, so that each can be frozen, cast and adapted on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.errors import ModelLoadError
from studio.models.entry_check import check_model_path, present_parts, read_config


@dataclass
class Components:
    family: str  # sd1 | sd2 | sd2-v | sdxl
    prediction: str  # epsilon | v_prediction
    tokenizers: tuple[Any, ...]
    text_encoders: tuple[Any, ...]
    vae: Any
    unet: Any
    scheduler: Any  # the model's own scheduler config as a DDPMScheduler, for training
    source: Path
    ema: str = "none"  # which UNet copy of a checkpoint with EMA weights was loaded: none | ema | non-ema
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"


def _family_from_diffusers_folder(folder: Path, prediction: str) -> str:
    index = read_config(folder / "model_index.json", "base model index")
    if "text_encoder_2" in present_parts(index, folder):
        return "sdxl"
    unet_cfg = read_config(folder / "unet" / "config.json", "base model unet")
    if unet_cfg.get("use_linear_projection"):
        return "sd2-v" if prediction == "v_prediction" else "sd2"
    return "sd1"


def load_components(path: str | Path, *, family: str = "auto", prediction: str = "auto", ema: str = "auto",
                    dtype: torch.dtype = torch.float32) -> Components:
    """`ema` (auto | use | ignore) applies to single files with an EMA copy of the UNet; a diffusers folder
    holds one UNet, so `use` is refused there rather than silently ignored."""
    path = Path(path).expanduser()
    check_model_path(path)  # a FIFO, a device, a broken folder: our words, before any library opens it
    if path.is_file():
        from studio.models import single_file  # single-file checkpoints (CompVis/SGM layout)

        return single_file.load_single_file_components(path, family=family, prediction=prediction, ema=ema,
                                                       dtype=dtype)
    if ema == "use":  # the same words the pre-start check says (studio.models.ema.choose)
        from studio.models import ema as ema_weights

        ema_weights.choose(path.name, False, ema)
    return _load_diffusers_folder(path, family=family, prediction=prediction, dtype=dtype)


def _load_diffusers_folder(folder: Path, *, family: str, prediction: str, dtype: torch.dtype) -> Components:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    def part(cls: Any, subfolder: str, **kwargs: Any) -> Any:
        return cls.from_pretrained(folder, subfolder=subfolder, local_files_only=True, **kwargs)

    try:
        scheduler = part(DDPMScheduler, "scheduler")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: cannot read the scheduler config ({exc})",
                             hint="choose the folder that contains model_index.json") from None
    if prediction == "auto":
        prediction = scheduler.config.get("prediction_type", "epsilon")
    if family == "auto":
        family = _family_from_diffusers_folder(folder, prediction)
    try:
        tokenizers = [part(CLIPTokenizer, "tokenizer")]
        encoders = [part(CLIPTextModel, "text_encoder", dtype=dtype)]
        if family == "sdxl":
            tokenizers.append(part(CLIPTokenizer, "tokenizer_2"))
            encoders.append(part(CLIPTextModelWithProjection, "text_encoder_2", dtype=dtype))
        vae = part(AutoencoderKL, "vae", torch_dtype=dtype)
        unet = part(UNet2DConditionModel, "unet", torch_dtype=dtype)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelLoadError(f"{folder}: cannot load the model ({exc})") from None
    scheduler.register_to_config(prediction_type=prediction)
    return Components(family=family, prediction=prediction, tokenizers=tuple(tokenizers),
                      text_encoders=tuple(encoders), vae=vae, unet=unet, scheduler=scheduler, source=folder)
