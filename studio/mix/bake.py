"""Baking a mix into a base model: W += Σ sᵢ·ΔWᵢ per layer in fp32, written as a new checkpoint.

`*.safetensors` gives one original-layout (CompVis/SGM) file, the layout WebUIs load; any other name a
diffusers folder. Every LoRA is checked against the base model before anything changes, the patch is the
live preview's code, the file is written atomically, and the inputs are never touched.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from studio.errors import ConfigError
from studio.fileio import atomic_dir, atomic_write_text
from studio.formats.kohya import DTYPES
from studio.mix.export import refuse_overwriting_sources
from studio.mix.patch import WeightPatcher
from studio.mix.provenance import checkpoint_mix_metadata
from studio.mix.recipe import Source, contributions, mix_family
from studio.safe_names import refuse_unsafe_name
from studio.mix.targets import check_fits, model_targets

PROVENANCE_FILE = "lora_studio_mix.json"


@dataclass
class BakeResult:
    path: Path
    layers_changed: int
    layout: str  # single-file | diffusers


def _base_precision(components, base: Path) -> str:
    info = components.extra.get("model_info") if hasattr(components, "extra") else None
    precision = getattr(info, "precision", "")
    if precision in DTYPES:
        return precision
    if base.is_dir():
        for f in sorted((base / "unet").glob("*.safetensors")):
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as fh:
                first = next(iter(fh.keys()), None)
                if first is not None:
                    return {"F16": "fp16", "BF16": "bf16"}.get(fh.get_slice(first).get_dtype(), "fp32")
    return "fp16"


def bake(base: str | Path, sources: Sequence[Source], out: str | Path, *, dtype: str | None = None) -> BakeResult:
    """Write `base` with `sources` applied to `out`; `dtype` None keeps the base model's precision."""
    from studio.models.load import load_components

    base, out = Path(base).expanduser(), Path(out).expanduser()
    if not sources:
        raise ConfigError("nothing to bake: add at least one LoRA")
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"unknown precision {dtype!r}; use fp16, bf16 or fp32")
    refuse_unsafe_name(out, "the baked checkpoint")
    refuse_overwriting_sources(out, [base, *[s.entry.path for s in sources]])
    components = load_components(base, dtype=torch.float32)
    family = components.family
    mix_family(sources, family)
    targets = model_targets(components.unet, components.text_encoders, family)
    for s in sources:
        check_fits(s.lora, s.file_name, targets, family)
    changed = WeightPatcher(targets).apply(contributions(sources))
    precision = dtype or _base_precision(components, base)
    _check_finite(targets, precision)
    meta = checkpoint_mix_metadata(sources, family, title=out.stem if out.suffix else out.name, base_name=base.name)
    if out.suffix.lower() == ".safetensors":
        from studio.models.original_layout import save_original_checkpoint

        _plain_name_or_path(components.unet, components.vae)
        save_original_checkpoint(out, family, components.unet, components.vae, components.text_encoders,
                                 tokenizers=components.tokenizers, prediction=components.prediction,
                                 dtype=DTYPES[precision], metadata=meta)
        return BakeResult(out, changed, "single-file")
    _write_diffusers_folder(base, out, components, DTYPES[precision], meta)
    return BakeResult(out, changed, "diffusers")


def _check_finite(targets, precision: str) -> None:
    """Refuse a bake whose patched weights are NaN/Inf in the output precision (strengths too large for fp16),
    naming the first such layer, before anything is written."""
    limit = torch.finfo(DTYPES[precision]).max
    for name, target in targets.items():
        weight = target.module.weight.detach()
        if not bool(torch.isfinite(weight).all()) or float(weight.abs().max()) > limit:
            raise ConfigError(f"the baked model would hold infinite or NaN weights in {name} ({precision}): the "
                              "strengths are too large; nothing was written",
                              hint="lower the strengths, or bake in fp32 (--dtype fp32)")


def _plain_name_or_path(*models) -> None:
    """diffusers keeps `from_pretrained`'s Path argument in the config; checkpoint metadata wants JSON strings."""
    for model in models:
        value = model.config.get("_name_or_path") if hasattr(model, "config") else None
        if isinstance(value, Path):
            model.register_to_config(_name_or_path=str(value))


def _write_diffusers_folder(base: Path, out: Path, components, dtype: torch.dtype, meta: dict[str, str]) -> None:
    """A diffusers folder: the base folder's files (configs, tokenizers, scheduler, VAE) with new weights."""
    if not base.is_dir():
        raise ConfigError(f"{out}: a diffusers folder can only be written from a diffusers base model",
                          hint="name the output *.safetensors to write a single-file checkpoint")
    parts = [("unet", components.unet)] + [(f"text_encoder{'' if i == 0 else f'_{i + 1}'}", te)
                                           for i, te in enumerate(components.text_encoders)]
    with atomic_dir(out) as tmp:
        shutil.copytree(base, tmp, dirs_exist_ok=True)
        for sub, model in parts:
            folder = tmp / sub
            for f in list(folder.glob("*.safetensors")) + list(folder.glob("*.bin")) + list(folder.glob("*.index.json")):
                f.unlink()
            model.to(dtype).save_pretrained(folder, safe_serialization=True)
        atomic_write_text(tmp / PROVENANCE_FILE, json.dumps(meta, ensure_ascii=False, indent=2))
