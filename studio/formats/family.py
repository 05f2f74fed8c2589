"""Which base model family a LoRA was made for, from its metadata and from the evidence in its keys.

Metadata is what WebUIs go by (A1111 hides LoRAs whose `ss_base_model_version` does not match the loaded
checkpoint), but it is missing from many downloaded files and can be wrong; keys and shapes cannot lie.
So keys win where they are decisive, metadata fills in what they cannot tell (SD 2.x epsilon vs
v-prediction), and a disagreement is reported rather than hidden. Widths and "conv or linear" are read from
whichever factors the network type has (`module_geometry`): LoHa and low-rank LoKr factors are 2-D with the
kernel folded in, so only a 4-D tensor proves a convolution.
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
    """What the detector needs of one module: where it is and the shapes of its adapter's tensors."""

    component: str  # unet | te | te1 | te2
    name: str  # kohya name or module path (dots or underscores both fine)
    parts: Mapping[str, tuple[int, ...]]  # part (`down`, `hada_w1_b`, …; `studio.formats.layouts`) → shape


@dataclass(frozen=True)
class Geometry:
    """What an adapter's tensors reveal about the layer it adapts; None where they cannot tell."""

    in_features: int | None  # input width of a linear layer (for a conv, in·kh·kw when the kernel is folded)
    conv: bool | None  # True: a convolution (any kernel); False: a linear layer; None: the shapes cannot say


def module_geometry(parts: Mapping[str, tuple[int, ...]]) -> Geometry:
    """Input width and conv-or-linear of one adapted layer, for every network type's own tensor shapes."""
    proof = ("mid", "hada_t1", "hada_t2", "lokr_t2", "dora_scale", "lokr_w2", "down")  # 4-D only for a conv
    if any(len(parts.get(p, ())) == 4 for p in proof):
        conv: bool | None = True
    elif "down" in parts or "diff" in parts or len(parts.get("dora_scale", ())) == 2:
        conv = False  # LoRA/LoCon and diffs keep the layer's dimensions; a linear's LyCORIS DoRA scale is 2-D
    else:  # LoHa / low-rank LoKr factors are 2-D for both
        conv = None
    return Geometry(_in_features(parts), conv)


def _in_features(parts: Mapping[str, tuple[int, ...]]) -> int | None:
    def cols(*names: str) -> int | None:  # the first given factor's columns
        return next((int(parts[n][1]) for n in names if len(parts.get(n, ())) >= 2), None)

    # LoHa: ΔW = (w1_a @ w1_b) ⊙ (w2_a @ w2_b); w1_b is r × in (Tucker: the core holds k)
    for name in ("down", "diff", "hada_w1_b"):
        if name in parts:
            return cols(name)
    left, right = cols("lokr_w1", "lokr_w1_b"), cols("lokr_w2", "lokr_w2_b")
    if left is not None and right is not None:  # ΔW = kron(w1, w2): in = in(w1) · in(w2)
        return left * right
    return None


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
        return ("sd2-v" if version.endswith("_v") or v_pred else "sd2"), f"ss_base_model_version={version}"
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
_CROSS_WIDTHS = {768: "v1", 1024: "v2", 2048: "xl"}
_TE_WIDTHS = {768: "v1", 1024: "v2", 1280: "xl"}  # 768 is also SDXL's first encoder: counted for `te` only


def family_from_keys(modules: Iterable[ModuleEvidence]) -> tuple[str, list[str]]:
    """(`sdxl`, `sd1`, `sd2`, `sd12` for "SD 1.x or 2.x", or "", and the reasons)."""
    found: dict[str, list[str]] = {"xl": [], "sd12": [], "v1": [], "v2": []}
    for m in modules:
        geometry = module_geometry(m.parts)
        name, width = m.name, geometry.in_features or 0
        if m.component in ("te1", "te2"):
            _add(found["xl"], "two text encoders")
        if m.component == "unet":
            if _SDXL_BLOCKS.search(name) or _SDXL_STRUCT.search(name):
                _add(found["xl"], "SDXL UNet blocks")
            if _SD12_BLOCKS.search(name):
                _add(found["sd12"], "attention in the first down / last up block")
            if _CROSS_KV.search(name) and width in _CROSS_WIDTHS:
                _add(found[_CROSS_WIDTHS[width]], f"cross-attention width {width}")
            if _PROJ_IN.search(name):
                if geometry.conv is True:
                    _add(found["v1"], "proj_in is a 1×1 convolution")
                elif geometry.conv is False:
                    _add(found["v2"], "proj_in is a linear layer")
        elif _TE_Q.search(name) and width in _TE_WIDTHS and (width != 768 or m.component == "te"):
            _add(found[_TE_WIDTHS[width]], f"text encoder width {width}")
    xl, sd12, v1, v2 = found.values()
    if xl:
        return ("", [f"conflicting keys: {xl[0]} but {sd12[0]}"]) if sd12 else ("sdxl", xl)
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
