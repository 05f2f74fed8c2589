"""Which base model family a LoRA was made for, from its metadata and from the evidence in its keys.

Metadata is what WebUIs go by (A1111 hides LoRAs whose `ss_base_model_version` does not match the loaded
checkpoint), but it is missing from many downloaded files and can be wrong; keys and shapes cannot lie
about the network they adapt. So both are read, keys win where they are decisive, metadata fills in what
keys cannot tell (SD 2.x epsilon vs v-prediction), and a disagreement is reported rather than hidden.

Evidence from keys and shapes:
- SDXL: a second text encoder (`lora_te1_`/`lora_te2_`, `text_encoder_2.`), SGM block names
  (`input_blocks_4_1_…`), attention in `up_blocks.0`, more than one transformer block per attention,
  cross-attention width 2048, text encoder width 1280;
- SD 1.x/2.x: attention in `down_blocks.0` or `up_blocks.3` (SDXL has neither);
- SD 1.x vs 2.x: cross-attention width 768 vs 1024, text-encoder width 768 vs 1024, `proj_in` a 1×1 conv (1.x)
  or a linear layer (2.x and SDXL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FAMILIES = ("sd1", "sd2", "sd2-v", "sdxl")
FAMILY_LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x (512, epsilon)", "sd2-v": "SD 2.x (768, v-prediction)",
                 "sdxl": "SDXL", "unknown": "unknown"}


def family_label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


def same_architecture(a: str, b: str) -> bool:
    """SD 2.x epsilon and v-prediction models share every weight shape, so their LoRAs mix."""
    group = {"sd2-v": "sd2"}
    return group.get(a, a) == group.get(b, b)


@dataclass(frozen=True)
class ModuleEvidence:
    """What the detector needs of one module: where it is and the shape of its input factor."""

    component: str  # unet | te | te1 | te2
    name: str  # kohya name or module path (dots or underscores both fine)
    in_shape: tuple[int, ...]  # shape of the down / lora_A / first factor (r × in …)


@dataclass(frozen=True)
class FamilyGuess:
    family: str  # sd1 | sd2 | sd2-v | sdxl | unknown
    evidence: tuple[str, ...]
    conflict: str = ""  # metadata and keys disagree: what each says


def family_from_metadata(meta: Mapping[str, str]) -> tuple[str, str]:
    """(family or "", the metadata that said so)."""
    version = meta.get("ss_base_model_version", "")
    v_pred = meta.get("ss_v_parameterization", "").lower() == "true"
    if version.startswith("sdxl"):
        return "sdxl", f"ss_base_model_version={version}"
    if version.startswith("sd_v2") or version == "sd_v1_v":
        fam = "sd2-v" if version.endswith("_v") or v_pred else "sd2"
        return fam, f"ss_base_model_version={version}"
    arch = meta.get("modelspec.architecture", "")
    if arch.startswith("stable-diffusion-xl"):
        return "sdxl", f"modelspec.architecture={arch}"
    if arch.startswith("stable-diffusion-v2"):
        return ("sd2-v" if "768-v" in arch or v_pred else "sd2"), f"modelspec.architecture={arch}"
    if arch.startswith("stable-diffusion-v1"):
        return "sd1", f"modelspec.architecture={arch}"
    if meta.get("ss_v2", "").lower() == "true":
        return ("sd2-v" if v_pred else "sd2"), "ss_v2=True"
    if version.startswith("sd_v1"):
        return "sd1", f"ss_base_model_version={version}"
    return "", ""


_CROSS_KV = re.compile(r"attn2[._]to_[kv]$")
_TE_Q = re.compile(r"self_attn[._]q_proj$")
_SDXL_BLOCKS = re.compile(r"(^|[._])(input_blocks|output_blocks|middle_block)[._]")
_SD12_BLOCKS = re.compile(r"(^|[._])(down_blocks[._]0[._]attentions|up_blocks[._]3[._]attentions)[._]")
_SDXL_STRUCT = re.compile(r"(^|[._])(up_blocks[._]0[._]attentions|transformer_blocks[._][1-9])")
_PROJ_IN = re.compile(r"(^|[._])proj_in$")


def family_from_keys(modules: Iterable[ModuleEvidence]) -> tuple[str, list[str]]:
    """(`sdxl`, `sd1`, `sd2`, `sd12` for "SD 1.x or 2.x", or "", and the reasons)."""
    xl: list[str] = []
    sd12: list[str] = []
    v1: list[str] = []
    v2: list[str] = []
    for m in modules:
        name, width = m.name, (m.in_shape[1] if len(m.in_shape) > 1 else 0)
        if m.component in ("te1", "te2"):
            _add(xl, "two text encoders")
        if m.component == "unet":
            if _SDXL_BLOCKS.search(name) or _SDXL_STRUCT.search(name):
                _add(xl, "SDXL UNet blocks")
            if _SD12_BLOCKS.search(name):
                _add(sd12, "attention in the first down / last up block")
            if _CROSS_KV.search(name):
                if width == 768:
                    _add(v1, "cross-attention width 768")
                elif width == 1024:
                    _add(v2, "cross-attention width 1024")
                elif width == 2048:
                    _add(xl, "cross-attention width 2048")
            if _PROJ_IN.search(name):
                if len(m.in_shape) == 4:
                    _add(v1, "proj_in is a 1×1 convolution")
                else:
                    _add(v2, "proj_in is a linear layer")
        elif _TE_Q.search(name):
            if width == 1280:
                _add(xl, "text encoder width 1280")
            elif width == 768 and m.component == "te":
                _add(v1, "text encoder width 768")
            elif width == 1024:
                _add(v2, "text encoder width 1024")
    if xl and not sd12:
        return "sdxl", xl
    if xl and sd12:
        return "", [f"conflicting keys: {xl[0]} but {sd12[0]}"]
    # a linear proj_in alone only says "not SD 1.x"; SD 2.x needs it together with SD 1/2 block evidence
    if v1 and not v2:
        return "sd1", sd12 + v1
    if v2 and not v1:
        if sd12 or any("width" in r for r in v2):
            return "sd2", sd12 + v2
        return "", []
    if sd12:
        return "sd12", sd12
    return "", []


def _add(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)


def detect_family(meta: Mapping[str, str], modules: Iterable[ModuleEvidence]) -> FamilyGuess:
    meta_family, meta_reason = family_from_metadata(meta)
    key_family, key_reasons = family_from_keys(modules)
    evidence = tuple(key_reasons) + ((meta_reason,) if meta_reason else ())
    if not key_family:
        return FamilyGuess(meta_family or "unknown", evidence)
    if key_family == "sd12":
        if meta_family in ("sd1", "sd2", "sd2-v"):
            return FamilyGuess(meta_family, evidence)
        if meta_family:
            return FamilyGuess("sd1", evidence, conflict=f"metadata says {family_label(meta_family)}, "
                                                         f"keys say SD 1.x/2.x ({key_reasons[0]})")
        return FamilyGuess("sd1", evidence + ("no metadata: assumed SD 1.x",))
    if not meta_family or same_architecture(meta_family, key_family):
        return FamilyGuess(meta_family or key_family, evidence)
    return FamilyGuess(key_family, evidence, conflict=f"metadata says {family_label(meta_family)}, "
                                                      f"keys say {family_label(key_family)} ({key_reasons[0]})")
