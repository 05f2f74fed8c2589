"""A LoRA's name, family, rank and trigger words from its safetensors header alone: no tensors, no torch.

The mixer shows a row for each LoRA the moment it is dropped in; reading hundreds of megabytes (and
importing torch into the window's process) for that would make it slow. The header has every key, shape
and metadata string, which is all family detection and the row need; the tensors are read in the worker.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from studio.errors import LoraFormatError
from studio.formats.family import ModuleEvidence, detect_family
from studio.formats.layouts import parse_key
from studio.models.safetensors_header import read_safetensors_header

_RANK_PARTS = ("down", "hada_w1_b", "lokr_w2_b", "lokr_w1_b")


@dataclass(frozen=True)
class LoraPeek:
    path: str
    name: str
    family: str
    ranks: tuple[int, ...]
    algorithms: tuple[str, ...]
    trigger_words: tuple[str, ...] = ()


def top_tags(meta: dict[str, str], n: int = 10) -> list[tuple[str, int]]:
    """The most frequent caption tags over all dataset folders (`ss_tag_frequency`), the WebUI's trigger hints."""
    try:
        folders = json.loads(meta.get("ss_tag_frequency", "") or "{}")
    except (ValueError, RecursionError):  # metadata of a downloaded file: damaged, or nested thousands deep
        return []
    counts: Counter[str] = Counter()
    if isinstance(folders, dict):
        for tags in folders.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if isinstance(count, (int, float)) and math.isfinite(count) and str(tag).strip():
                        counts[str(tag).strip()] += int(count)
    return counts.most_common(n)


def top_tag_words(meta: dict[str, str], n: int = 6) -> tuple[str, ...]:
    """`modelspec.trigger_phrase` first, then the most frequent caption tags."""
    phrase = meta.get("modelspec.trigger_phrase", "").strip()
    words = [phrase] if phrase else []
    words += [t for t, _ in top_tags(meta, n + 1) if t not in words]
    return tuple(words[:n])


def peek_lora(path: str | Path) -> LoraPeek:
    """The mixer row of a LoRA, from its validated header (`studio.models.safetensors_header`)."""
    path = Path(path)
    header = read_safetensors_header(path)
    shapes, meta = {k: e.shape for k, e in header.tensors.items()}, header.metadata
    ranks, algos = set(), set()
    parts: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}  # module → its parts' shapes
    for key, shape in shapes.items():
        ref = parse_key(key)
        if ref is None or ref.unsupported:
            continue
        if ref.part in _RANK_PARTS and shape:
            ranks.add(shape[0])
        parts.setdefault((ref.component, ref.module), {})[ref.part] = tuple(shape)
        algos.add("loha" if ref.part.startswith("hada") else "lokr" if ref.part.startswith("lokr") else "lora")
    if not parts:
        raise LoraFormatError(f"{path.name}: no LoRA keys in this file", hint="choose a LoRA .safetensors file")
    evidence = [ModuleEvidence(component, module, parts=p) for (component, module), p in parts.items()]
    family = detect_family(meta, evidence).family
    name = meta.get("ss_output_name") or meta.get("modelspec.title") or path.stem
    return LoraPeek(path=str(path), name=name, family=family, ranks=tuple(sorted(ranks)),
                    algorithms=tuple(sorted(algos)), trigger_words=top_tag_words(meta))
