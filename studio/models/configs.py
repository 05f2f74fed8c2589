"""The config folders and tokenizers that loading a single-file checkpoint needs, without the network.

A single-file checkpoint holds weights only, and diffusers would fetch the family's configs from the hub;
we ship them instead (`resources/configs/<family>/`), and checkpoints we write carry their exact configs,
so a model whose sizes differ from the reference still loads. The CLIP vocabulary is shipped once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from studio.errors import ModelLoadError
from studio.resources import resource_path

FAMILIES = ("sd1", "sd2", "sd2-v", "sdxl")
CLIP_VOCAB_SIZE = 49408
META_TOKENIZERS = "studio.tokenizers"
_COMPONENT_CONFIGS = ("unet", "vae", "text_encoder", "text_encoder_2")


def shipped_config(family: str) -> Path:
    if family not in FAMILIES:
        raise ModelLoadError(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")
    folder = resource_path("configs", family)
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(f"the bundled configuration for {family} is missing ({folder})",
                             hint="the installation is incomplete; reinstall LoRA Studio")
    return folder


@functools.lru_cache(maxsize=1)
def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    folder = resource_path("tokenizers", "clip")
    try:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
    except (OSError, ValueError):
        raise ModelLoadError(f"the bundled CLIP vocabulary is missing or damaged ({folder})",
                             hint="the installation is incomplete; reinstall LoRA Studio") from None
    merges = [tuple(line.split(" ")) for line in lines[1:] if line and not line.startswith("#")]
    return vocab, merges  # type: ignore[return-value]


def load_tokenizer(folder: str | Path):
    """A `CLIPTokenizer` from a tokenizer folder; the shared CLIP vocabulary fills in when the folder has none."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelLoadError(f"no readable tokenizer in {folder}") from None
    settings = {k: v for k, v in settings.items() if k in _TOKENIZER_KWARGS}
    vocab, merges = _clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), **settings)


_TOKENIZER_KWARGS = ("model_max_length", "bos_token", "eos_token", "unk_token", "pad_token", "do_lower_case",
                     "errors", "add_prefix_space", "clean_up_tokenization_spaces")


def tokenizer_metadata(tokenizers: Any) -> dict[str, str]:
    """Checkpoint metadata that lets `resolved_config` rebuild these tokenizers: their settings, plus the whole
    vocabulary only when it is not the standard CLIP one (so real checkpoints stay small)."""
    entries = [{"pad_token": str(tok.pad_token), "model_max_length": int(tok.model_max_length),
                **({"tokenizer_json": tok.backend_tokenizer.to_str()} if len(tok) != CLIP_VOCAB_SIZE else {})}
               for tok in tokenizers or ()]
    return {META_TOKENIZERS: json.dumps(entries, separators=(",", ":"))} if entries else {}


@contextlib.contextmanager
def resolved_config(family: str, metadata: Mapping[str, str] | None = None,
                    override: str | Path | None = None) -> Iterator[Path]:
    """The config folder to load a checkpoint with: the user's `override` folder if given, else the family's
    shipped folder, with any component configs and tokenizers the checkpoint itself records laid over it."""
    if override is not None:
        folder = Path(override)
        if not folder.is_dir():
            raise ModelLoadError(f"config folder not found: {folder}",
                                 hint="choose a diffusers model folder (with unet/, vae/, text_encoder/ configs)")
        yield folder
        return
    base = shipped_config(family)
    from studio.models.original_layout import META_CONFIGS

    embedded = _embedded(metadata or {}, META_CONFIGS, dict)
    tokenizers = _embedded(metadata or {}, META_TOKENIZERS, list)
    if not embedded and not tokenizers:
        yield base
        return
    with tempfile.TemporaryDirectory(prefix="studio-config-") as tmp:
        folder = Path(tmp) / family
        shutil.copytree(base, folder)
        for name, config in (embedded or {}).items():
            if name in _COMPONENT_CONFIGS and isinstance(config, dict):
                (folder / name).mkdir(exist_ok=True)
                (folder / name / "config.json").write_text(json.dumps(config), encoding="utf-8")
        for index, entry in enumerate(tokenizers or []):
            _write_tokenizer(folder / ("tokenizer" if index == 0 else f"tokenizer_{index + 1}"), entry)
        yield folder


def _embedded(metadata: Mapping[str, str], key: str, kind: type) -> Any:
    raw = metadata.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, kind):
        raise ModelLoadError(f"the checkpoint's `{key}` metadata is damaged",
                             hint="choose the model family and, if needed, a config folder by hand")
    return value


def _write_tokenizer(folder: Path, entry: Mapping[str, Any]) -> None:
    if not isinstance(entry, Mapping):
        raise ModelLoadError(f"the checkpoint's `{META_TOKENIZERS}` metadata is damaged")
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "tokenizer_config.json"
    settings = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    settings.update({k: entry[k] for k in ("pad_token", "model_max_length") if k in entry})
    settings["tokenizer_class"] = "CLIPTokenizer"
    config_path.write_text(json.dumps(settings), encoding="utf-8")
    special = {k: settings[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in settings}
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    if isinstance(entry.get("tokenizer_json"), str):
        (folder / "tokenizer.json").write_text(entry["tokenizer_json"], encoding="utf-8")
