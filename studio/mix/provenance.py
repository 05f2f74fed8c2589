"""Metadata that records where a merged LoRA or a baked checkpoint came from.

`modelspec.merged_from` (a comma-separated list of titles, as sd-scripts' `build_merged_from` writes it) is
for the WebUIs; `ls_mix_sources` (our JSON: name, file, sha256, strengths, block weights of each source) lets
`lora-studio inspect` and the mixer show, and reproduce, what went in. The sources' trigger words are carried
over too, since those are what a user needs to prompt the merged result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from studio import __version__
from studio.formats.kohya import metadata_json
from studio.formats.metadata import ARCHITECTURE, BASE_MODEL_VERSION
from studio.mix.recipe import Source

MIX_FORMAT = "1"


def sources_record(sources: Sequence[Source]) -> str:
    return metadata_json([s.record() for s in sources])


def merged_from(sources: Sequence[Source]) -> str:
    return ", ".join(s.lora.metadata.get("modelspec.title") or s.title for s in sources)


def _tag_frequency(sources: Sequence[Source]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in sources:
        try:
            folders = json.loads(s.lora.metadata.get("ss_tag_frequency", "") or "{}")
        except ValueError:
            continue
        if isinstance(folders, dict):
            for folder, tags in folders.items():
                if isinstance(tags, dict):
                    out[f"{s.title}/{folder}"] = {str(t): int(c) for t, c in tags.items() if isinstance(c, (int, float))}
    return out


def lora_mix_metadata(sources: Sequence[Source], family: str, *, title: str, method: str, rank: int,
                      overall_error: float | None = None) -> dict[str, str]:
    """`ss_*` + `modelspec.*` + `ls_*` keys for a merged LoRA (alpha = rank in every module)."""
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(float(rank)),
        "ss_v2": str(family in ("sd2", "sd2-v")),
        "ss_base_model_version": BASE_MODEL_VERSION.get(family, "sd_v1"),
        "ss_v_parameterization": str(family == "sd2-v"),
        "ss_output_name": title,
        "ss_training_comment": f"merged with LoRA Studio {__version__} ({method})",
        "ss_tag_frequency": metadata_json(_tag_frequency(sources)),
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": ARCHITECTURE.get(family, ARCHITECTURE["sd1"]),
        "modelspec.implementation": ("https://github.com/Stability-AI/generative-models" if family == "sdxl"
                                     else "diffusers"),
        "modelspec.title": title,
        "modelspec.date": dt.datetime.now(tz=dt.timezone.utc).isoformat(timespec="seconds"),
        "modelspec.prediction_type": "v" if family == "sd2-v" else "epsilon",
        "modelspec.merged_from": merged_from(sources),
        "ls_mix_format": MIX_FORMAT,
        "ls_mix_method": method,
        "ls_mix_sources": sources_record(sources),
    }
    for key in ("ss_resolution", "modelspec.resolution", "ss_sd_model_name"):  # kept when every source agrees
        values = {s.lora.metadata.get(key, "") for s in sources}
        if len(values) == 1 and (value := values.pop()):
            meta[key] = value
    triggers = [s.lora.metadata.get("modelspec.trigger_phrase", "") for s in sources]
    if any(triggers):
        meta["modelspec.trigger_phrase"] = ", ".join(t for t in triggers if t)
    if overall_error is not None:
        meta["ls_mix_error"] = f"{overall_error:.6g}"
    return meta


def checkpoint_mix_metadata(sources: Sequence[Source], family: str, *, title: str, base_name: str) -> dict[str, str]:
    return {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": ARCHITECTURE.get(family, ARCHITECTURE["sd1"]).removesuffix("/lora"),
        "modelspec.title": title,
        "modelspec.date": dt.datetime.now(tz=dt.timezone.utc).isoformat(timespec="seconds"),
        "modelspec.merged_from": ", ".join([base_name, merged_from(sources)]),
        "ls_mix_format": MIX_FORMAT,
        "ls_mix_method": "bake",
        "ls_mix_base": base_name,
        "ls_mix_sources": sources_record(sources),
    }
