"""What each WebUI and library does with each kind of LoRA module, kept as data in one place (torch-free).

When a loader changes, this table (and `docs/compatibility.md`) is what changes; each rule names the loader
version and source it was read from, because "ComfyUI loads DoRA" is only true of some versions. A
module's *feature* is its network type and, for DoRA, the axis of its `dora_scale` (`dora-out`: out × 1,
peft's and LyCORIS' default; `dora-in`: 1 × in); precision and target change nothing for these loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

FEATURES = ("lora", "locon", "locon-tucker", "loha", "lokr", "full", "dora-out", "dora-in")


class Handling(str, Enum):
    """What a loader does with a feature it meets."""

    EXACT = "exact"  # every key is read and the result is what was trained
    WRONG = "wrong"  # every key is read, but the loader's math gives another weight
    DROPPED = "dropped"  # the feature's extra keys are ignored; the rest of the module is applied
    SKIPPED = "skipped"  # the whole module is ignored; the rest of the file loads
    REFUSED = "refused"  # the loader rejects the whole file


@dataclass(frozen=True)
class LoaderRules:
    key: str
    name: str
    version: str
    source: str
    handling: tuple[tuple[str, Handling], ...]  # feature → handling; a feature not named is SKIPPED
    why: tuple[tuple[str, str], ...] = ()  # feature → one sentence on why it is not EXACT

    def handles(self, feature: str) -> Handling:
        return dict(self.handling).get(feature, Handling.SKIPPED)

    def reason(self, feature: str) -> str:
        return dict(self.why).get(feature, "")


_ALL_EXACT = tuple((f, Handling.EXACT) for f in FEATURES)

LOADERS: tuple[LoaderRules, ...] = (
    LoaderRules(
        key="a1111", name="AUTOMATIC1111", version="1.10.1",
        source="extensions-builtin/Lora: network_lora.py, network_hada.py, network_lokr.py, network_full.py; "
               "network.py apply_weight_decompose",
        handling=tuple((f, Handling.WRONG if f == "dora-out" else Handling.EXACT) for f in FEATURES),
        why=(("dora-out", "apply_weight_decompose always normalises per input column, so an output-axis "
                          "dora_scale (out x 1, what peft trains and LyCORIS writes by default) renders wrong"),),
    ),
    LoaderRules(
        key="forge", name="Forge", version="late 2026 (main)",
        source="backend/patcher/lora.py (weight_decompose from ComfyUI, PR #2856)",
        handling=_ALL_EXACT,
    ),
    LoaderRules(
        key="comfyui", name="ComfyUI", version="late 2026 (master)",
        source="comfy/lora.py, comfy/weight_adapter/ (lora.py, loha.py, lokr.py, base.py weight_decompose)",
        handling=_ALL_EXACT,
    ),
    LoaderRules(
        key="diffusers", name="diffusers", version="0.42.1",
        source="loaders/lora_pipeline.py lora_state_dict; "
               "loaders/lora_conversion_utils.py _convert_non_diffusers_lora_to_diffusers",
        handling=(("lora", Handling.EXACT), ("locon", Handling.EXACT), ("locon-tucker", Handling.REFUSED),
                  ("loha", Handling.REFUSED), ("lokr", Handling.REFUSED), ("full", Handling.REFUSED),
                  ("dora-out", Handling.DROPPED), ("dora-in", Handling.DROPPED)),
        why=(("locon-tucker", "only lora_down/lora_up/alpha keys are converted; any other key (lora_mid) "
                              "raises 'The following keys have not been correctly renamed'"),
             ("loha", "SD/SDXL kohya conversion reads only lora_down/lora_up/alpha: a hada_* key, UNet or "
                      "text encoder, makes load_lora_weights raise for the whole file"),
             ("lokr", "SD/SDXL kohya conversion reads only lora_down/lora_up/alpha: a lokr_* key, UNet or "
                      "text encoder, makes load_lora_weights raise for the whole file (its LoKr converters "
                      "are for Z-Image and Flux.2 only)"),
             ("full", "stored-delta (diff) keys are not converted for SD/SDXL; the file is refused"),
             ("dora-out", "every dora_scale is dropped with a warning; the plain LoRA part is applied"),
             ("dora-in", "every dora_scale is dropped with a warning; the plain LoRA part is applied")),
    ),
    LoaderRules(
        key="sd-scripts", name="sd-scripts", version="networks/lora.py (main, late 2026)",
        source="networks/lora.py create_network_from_weights (reads lora_down/lora_up/alpha, loads non-strict)",
        handling=(("lora", Handling.EXACT), ("locon", Handling.EXACT), ("dora-out", Handling.DROPPED),
                  ("dora-in", Handling.DROPPED)),
        why=(("locon-tucker", "networks/lora.py has no lora_mid: the module is not rebuilt"),
             ("loha", "networks/lora.py reads LoRA/LoCon only: hada_* modules are not loaded"),
             ("lokr", "networks/lora.py reads LoRA/LoCon only: lokr_* modules are not loaded"),
             ("full", "networks/lora.py reads LoRA/LoCon only: stored-delta modules are not loaded"),
             ("dora-out", "networks/lora.py has no DoRA: dora_scale is ignored by its non-strict load"),
             ("dora-in", "networks/lora.py has no DoRA: dora_scale is ignored by its non-strict load")),
    ),
)
