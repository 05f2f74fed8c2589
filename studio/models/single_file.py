"""Loading a single-file checkpoint (original CompVis/SGM layout) into separate diffusers components, offline.

Each part is converted by diffusers against a local config folder (`configs.resolved_config`): passing
`config=` a local folder is what keeps diffusers off the hub. The text encoders are built here from their
config because diffusers' own choice of converter guesses from shapes, and two encoders of the same width
(our tiny SDXL) would fool it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from studio.errors import ModelLoadError
from studio.models import detect, safe_load
from studio.models import ema as ema_weights
from studio.models.configs import load_tokenizer, resolved_config
from studio.models.load import Components
from studio.models.original_layout import SD2_TE_PREFIX, SDXL_TE2_PREFIX

log = logging.getLogger(__name__)


def load_single_file_components(path: str | Path, *, family: str = "auto", prediction: str = "auto",
                                ema: str = "auto", dtype: torch.dtype = torch.float32,
                                config: str | Path | None = None) -> Components:
    """`config` optionally names a diffusers folder to take configs and tokenizers from instead of the bundled
    ones (for models with non-reference sizes)."""
    path = Path(path)
    state, metadata = safe_load.load_with_metadata(path)
    info = detect.info_from_state(
        path, {k: tuple(v.shape) for k, v in state.items()}, detect.bytes_by_dtype(state.values()), metadata,
        family=family, prediction=prediction, ema=ema,
        probe=lambda key: state[key].float().flatten().tolist() if key in state else None)
    ema_weights.prepare(state, info.ema, path.name)
    with resolved_config(info.family, metadata, config) as folder:
        unet = _diffusers_part("UNet", path, info.family,
                               lambda: _from_single_file("unet", state, folder, dtype))
        vae = _diffusers_part("VAE", path, info.family,
                              lambda: _from_single_file("vae", state, folder, dtype))
        encoders = [_diffusers_part("text encoder", path, info.family,
                                    lambda: _text_encoder(state, folder, "text_encoder", info.family, dtype))]
        tokenizers = [load_tokenizer(folder / "tokenizer")]
        if info.family == "sdxl":
            encoders.append(_diffusers_part("second text encoder", path, info.family,
                                            lambda: _text_encoder(state, folder, "text_encoder_2", "sdxl", dtype)))
            tokenizers.append(load_tokenizer(folder / "tokenizer_2"))
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
        scheduler.register_to_config(prediction_type=info.prediction)
    del state
    return Components(family=info.family, prediction=info.prediction, tokenizers=tuple(tokenizers),
                      text_encoders=tuple(encoders), vae=vae, unet=unet, scheduler=scheduler, source=path,
                      ema=info.ema, extra={"model_info": info})


def _diffusers_part(what: str, path: Path, family: str, build):
    """Run one component's conversion, turning library errors into one message a user can act on."""
    try:
        module = build()
    except ModelLoadError:
        raise
    except (ValueError, RuntimeError, KeyError, OSError, IndexError) as exc:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path.name}: the {what} does not match the {family} configuration ({detail})",
            hint="if this is an unusual or pruned model, set the model family by hand or choose a diffusers "
                 "folder with its configs") from None
    missing = [n for n, p in module.named_parameters() if p.device.type == "meta"]
    if missing:
        raise ModelLoadError(f"{path.name}: the checkpoint has no weights for {len(missing)} {what} parameter(s), "
                             f"e.g. `{missing[0]}`", hint="the file is incomplete or is not a full checkpoint")
    return module.eval()


def _from_single_file(part: str, state, folder: Path, dtype: torch.dtype):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    cls = UNet2DConditionModel if part == "unet" else AutoencoderKL
    return cls.from_single_file(state, config=str(folder), subfolder=part, local_files_only=True,
                                torch_dtype=dtype)


def _text_encoder(state, folder: Path, subfolder: str, family: str, dtype: torch.dtype):
    from accelerate import init_empty_weights
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig.from_pretrained(folder, subfolder=subfolder, local_files_only=True)
    cls = CLIPTextModelWithProjection if subfolder == "text_encoder_2" else CLIPTextModel
    with init_empty_weights():  # parameters on the meta device; buffers (position ids) stay real
        model = cls(cfg)
    if subfolder == "text_encoder_2":
        converted = convert_open_clip_checkpoint(model, state, prefix=SDXL_TE2_PREFIX)
        # diffusers' own scripts/convert_diffusers_to_original_sdxl.py leaves the projection as it found it,
        # `text_projection.weight` in transformers' (out × in) orientation, where OpenCLIP stores
        # `text_projection` transposed; diffusers' converter reads only the latter
        hf_projection = state.get(SDXL_TE2_PREFIX + "text_projection.weight")
        if SDXL_TE2_PREFIX + "text_projection" not in state and hf_projection is not None:
            converted["text_projection.weight"] = hf_projection
    elif family in ("sd2", "sd2-v"):
        converted = convert_open_clip_checkpoint(model, state, prefix=SD2_TE_PREFIX)
    else:
        converted = convert_ldm_clip_checkpoint(state)  # SD 1.x and SDXL's first encoder (HF CLIP keys)
    if not hasattr(model, "text_model"):  # transformers ≥ 5.6 flattened CLIPTextModel
        converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
    converted = {k: v for k, v in converted.items() if not k.endswith("position_ids")}
    result = model.load_state_dict(converted, strict=False, assign=True)
    if result.missing_keys:
        raise ModelLoadError(f"the {subfolder.replace('_', ' ')} lacks {len(result.missing_keys)} weight(s), e.g. "
                             f"`{result.missing_keys[0]}`", hint="the file is incomplete or is not a full checkpoint")
    if result.unexpected_keys:
        log.info("%s: ignored %d unexpected keys", subfolder, len(result.unexpected_keys))
    return model.to(dtype)
