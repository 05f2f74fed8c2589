"""A mix with its files read: `Source`s, their family, and the per-module (module, strength) lists
that merging, baking and previewing consume. (The torch-free description of a mix is `studio.mix.request`.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import LoraFormatError
from studio.formats.family import family_label, same_architecture
from studio.formats.lora_file import LoraFile, LoraModule
from studio.mix.request import MixEntry


@dataclass
class Source:
    entry: MixEntry
    lora: LoraFile
    title: str  # what people call it: ss_output_name / modelspec.title / file name
    sha256: str

    @property
    def file_name(self) -> str:
        return Path(self.entry.path).name

    def record(self) -> dict:
        """What merged files and baked checkpoints record about this source (`ls_mix_sources`)."""
        e = self.entry
        rec = {"name": self.title, "file": self.file_name, "sha256": self.sha256, "strength": e.strength,
               "unet": e.unet, "te": e.te, "blocks": e.block_weights, "enabled": e.enabled}
        if self.lora.metadata.get("sshs_model_hash"):
            rec["sshs_model_hash"] = self.lora.metadata["sshs_model_hash"]
        return rec


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of the whole file (what civitai and the WebUIs show), cached by path, size and mtime."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def title_of(lora: LoraFile, path: str | Path) -> str:
    return lora.metadata.get("ss_output_name") or lora.metadata.get("modelspec.title") or Path(path).stem


@dataclass
class LoraCache:
    """Files already read, by path and modification time: moving a slider must not re-read a LoRA."""

    _items: dict[tuple[str, int], LoraFile] = field(default_factory=dict)

    def get(self, path: str | Path) -> LoraFile:
        from studio.formats.reader import read_lora

        p = Path(path).expanduser()
        try:
            key = (str(p.resolve()), os.stat(p).st_mtime_ns)
        except OSError:
            key = (str(p), 0)
        if key not in self._items:
            self._items = {k: v for k, v in self._items.items() if k[0] != key[0]}
            self._items[key] = read_lora(p)
        return self._items[key]


def load_sources(entries: Iterable[MixEntry], cache: LoraCache | None = None) -> list[Source]:
    cache = cache or LoraCache()
    return [Source(entry=e, lora=(lf := cache.get(e.path)), title=title_of(lf, e.path), sha256=file_sha256(e.path))
            for e in entries]


def mix_family(sources: Sequence[Source], model_family: str | None = None) -> str:
    """The family every source is for (and the model, when given); ConfigError saying which one differs."""
    known = [(s, s.lora.family) for s in sources if s.lora.family != "unknown"]
    reference, ref_name = model_family, "the base model"
    if reference is None and known:
        reference, ref_name = known[0][1], known[0][0].file_name
    for source, family in known:
        if reference is not None and not same_architecture(family, reference):
            raise LoraFormatError(
                f"{source.file_name} is a LoRA for {family_label(family)}, but {ref_name} is "
                f"{family_label(reference)}: LoRAs for another base model family cannot be mixed with it",
                hint="remove it from the mix, or choose a base model of its family")
    return reference or "unknown"


def contributions(sources: Sequence[Source]) -> dict[str, list[tuple[LoraModule, float]]]:
    """module name → [(module, strength)] over the enabled sources, dropping zero strengths."""
    out: dict[str, list[tuple[LoraModule, float]]] = {}
    for s in sources:
        for name, module in s.lora.modules.items():
            strength = s.entry.module_strength(name)
            if strength != 0.0:
                out.setdefault(name, []).append((module, strength))
    return out
