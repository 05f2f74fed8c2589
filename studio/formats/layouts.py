"""Recognising one key of a LoRA state dict, whatever tool wrote it, as a `KeyRef`.

Layouts recognised, the same set ComfyUI's and diffusers' loaders accept for Stable Diffusion:
- kohya / LyCORIS: `lora_unet_<name>.lora_down.weight`, `.lora_up.weight`, `.lora_mid.weight`, `.alpha`,
  `.dora_scale`, `.hada_*`, `.lokr_*`;
- peft / diffusers: `unet.<path>.lora_A.weight` / `.lora_B.weight` (+ `text_encoder.`, `text_encoder_2.`,
  optional `base_model.model.`, optional `.default` adapter name), `.lora_magnitude_vector` (DoRA);
- old diffusers: `<path>.processor.to_q_lora.down.weight` (attention processors),
  `<path>.lora.down.weight` (LoRACompatibleLinear), `<path>.lora_linear_layer.down.weight` (text encoders).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.formats.names import KOHYA_PREFIXES

LORA_PARTS = {"lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid"}
LYCORIS_PARTS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
                 "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")
#: LyCORIS algorithms we recognise but cannot mix (named in the error so the user knows what the file is)
UNSUPPORTED_PARTS = {
    "diff": "LyCORIS full (diff)", "diff_b": "LyCORIS full (diff)", "w_norm": "LyCORIS norm", "b_norm": "LyCORIS norm",
    "oft_blocks": "OFT", "oft_diag": "OFT", "oft_R": "BOFT", "on_input": "IA3", "a1.weight": "GLoRA",
    "a2.weight": "GLoRA", "b1.weight": "GLoRA", "b2.weight": "GLoRA", "bias_indices": "LyCORIS bias",
    "bias_values": "LyCORIS bias", "scalar": "LoRA-FA scalar", "lora_up.bias": "bias",
}

#: prefixes of full checkpoints, embeddings and VAEs: a file made only of these is not a LoRA at all
NOT_LORA_HINTS = (
    ("model.diffusion_model.", "a full Stable Diffusion checkpoint"),
    ("first_stage_model.", "a full Stable Diffusion checkpoint"),
    ("cond_stage_model.", "a full Stable Diffusion checkpoint"),
    ("conditioner.embedders.", "a full SDXL checkpoint"),
    ("encoder.down.", "a VAE"), ("decoder.up.", "a VAE"),
    ("string_to_param", "a textual-inversion embedding"), ("emb_params", "a textual-inversion embedding"),
    ("clip_l", "an SDXL textual-inversion embedding"), ("clip_g", "an SDXL textual-inversion embedding"),
    ("down_blocks.", "a diffusers UNet's weights"), ("text_model.", "a text encoder's weights"),
)


@dataclass(frozen=True)
class KeyRef:
    component: str  # unet | te | te1 | te2 (te = the only text encoder, or the first when not yet known)
    module: str  # a kohya name when `named` is True, else a module path inside that component
    part: str  # down | up | mid | alpha | dora_scale | magnitude | hada_* | lokr_*
    layout: str  # kohya | lycoris | peft | diffusers-old
    named: bool = False  # True: `module` is already a kohya name
    unsupported: str = ""  # the algorithm's name for parts we recognise but cannot use


_PEFT = re.compile(r"^(?P<path>.+?)\.(?P<part>lora_A|lora_B|lora_magnitude_vector)(?:\.default)?(?:\.weight)?$")
_PEFT_ALPHA = re.compile(r"^(?P<path>.+?)\.alpha$")
_OLD_PROCESSOR = re.compile(r"^(?P<path>.+?)\.(?:processor\.)?(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<part>down|up)"
                            r"\.weight$")
_OLD_COMPAT = re.compile(r"^(?P<path>.+?)\.(?:lora|lora_linear_layer)\.(?P<part>down|up)\.weight$")
_PEFT_PARTS = {"lora_A": "down", "lora_B": "up", "lora_magnitude_vector": "magnitude"}
_COMPONENTS = (("text_encoder_2.", "te2"), ("text_encoder.", "te"), ("unet.", "unet"))
_TE_PROCESSOR = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
_UNET_PROCESSOR = {"to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"}


def parse_key(key: str) -> KeyRef | None:
    """The `KeyRef` of one state-dict key, or None when no known layout has such a key."""
    for prefix, component in KOHYA_PREFIXES:
        if key.startswith(prefix):
            return _parse_kohya(key, component)
    return _parse_path_key(key)


def _parse_kohya(key: str, component: str) -> KeyRef | None:
    name, _, part = key.partition(".")  # no dot: no part, no match
    if part in LORA_PARTS or part in ("alpha", "dora_scale"):
        return KeyRef(component, name, LORA_PARTS.get(part, part), "kohya", named=True)
    if part in LYCORIS_PARTS or part in UNSUPPORTED_PARTS:
        return KeyRef(component, name, part, "lycoris", named=True,
                      unsupported=UNSUPPORTED_PARTS.get(part, ""))
    return None


def _component_and_path(path: str) -> tuple[str, str]:
    path = path.removeprefix("base_model.model.")
    for prefix, component in _COMPONENTS:
        if path.startswith(prefix):
            return component, path[len(prefix):].removeprefix("base_model.model.")
    # a bare adapter state dict: the text encoder's modules all live under `text_model.`
    return ("te" if path.startswith("text_model.") else "unet"), path


def _parse_path_key(key: str) -> KeyRef | None:
    if m := _OLD_PROCESSOR.match(key):
        component, path = _component_and_path(m["path"])
        table = _UNET_PROCESSOR if component == "unet" else _TE_PROCESSOR
        path = path.removesuffix(".processor")
        return KeyRef(component, f"{path}.{table[m['proj']]}", m["part"], "diffusers-old")
    for pattern, layout in ((_OLD_COMPAT, "diffusers-old"), (_PEFT, "peft"), (_PEFT_ALPHA, "peft")):
        if m := pattern.match(key):
            component, path = _component_and_path(m["path"])
            part = m.groupdict().get("part", "alpha")
            return KeyRef(component, path, _PEFT_PARTS.get(part, part), layout)
    return None


def not_lora_reason(keys: list[str]) -> str:
    """What a file with none of the LoRA layouts' keys looks like instead, for the error message."""
    for prefix, what in NOT_LORA_HINTS:
        if any(k.startswith(prefix) or f".{prefix}" in k for k in keys):
            return what
    return "not a LoRA"
