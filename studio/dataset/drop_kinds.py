"""What a set of dropped paths is, so each goes where it belongs: images to the dataset, a base model to the
model field, LoRAs to the mixer, and everything else set aside with the reason.

Users drop whatever they have at hand (a training folder, the checkpoint next to it, last week's LoRA). A
`.safetensors` file is told apart by its header's keys alone: no tensor is read and torch is never
imported, because this runs in the window's process on every drop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.dataset.images import is_image_path
from studio.dataset.scan import dataset_folders
from studio.errors import StudioError
from studio.formats.layouts import parse_key
from studio.models.base_files import SAFETENSORS_SUFFIXES
from studio.models.safetensors_header import read_safetensors_header

_UNET = "model.diffusion_model."  # every single-file SD 1.x / 2.x / SDXL checkpoint has its UNet here
_PICKLED_MODELS = (".ckpt",)  # a .pt/.pth may as well be an embedding; it cannot be told without unpickling


@dataclass(frozen=True)
class Ignored:
    path: Path
    why: str


@dataclass(frozen=True)
class DropPlan:
    """Where each dropped path goes. `model` is the first base model; later ones are in `ignored`."""

    folders: tuple[Path, ...] = ()
    images: tuple[Path, ...] = ()
    model: Path | None = None
    loras: tuple[Path, ...] = ()
    ignored: tuple[Ignored, ...] = ()

    def note(self) -> str:
        """One line saying what went where, e.g. "2 folders added to the dataset · base model set to x.ckpt"."""
        parts = [f"{_count(len(paths), noun)} added to the dataset"
                 for paths, noun in ((self.folders, "folder"), (self.images, "image")) if paths]
        if self.model is not None:
            parts.append(f"base model set to {self.model.name}")
        if self.loras:
            parts.append(f"{_count(len(self.loras), 'LoRA')} added to the mixer")
        if len(self.ignored) == 1:
            parts.append(f"ignored {self.ignored[0].path.name}: {self.ignored[0].why}")
        elif self.ignored:
            names = ", ".join(i.path.name for i in self.ignored[:3]) + (" …" if len(self.ignored) > 3 else "")
            parts.append(f"{len(self.ignored)} ignored ({names}): {self.ignored[0].why}")
        return " · ".join(parts) if parts else "Nothing dropped"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def classify(paths: Iterable[str | Path]) -> DropPlan:
    """Sort dropped paths by what they are (duplicates once, in the order dropped)."""
    found: dict[str, list[Path]] = {"folder": [], "image": [], "lora": [], "model": []}
    ignored: list[Ignored] = []
    for raw in dict.fromkeys(Path(p).expanduser() for p in paths):
        kind, why = _kind(raw)
        if kind == "ignored" and raw.is_dir() and (subs := _image_subfolders(raw)):
            found["folder"] += subs  # a folder of image folders (shoot/cats, shoot/dogs): each one joins
        elif kind == "ignored":
            ignored.append(Ignored(raw, why))
        else:
            found[kind].append(raw.resolve())
    model, *others = found["model"] or [None]
    ignored += [Ignored(m, "only one base model is used; the first one dropped was set") for m in others]
    return DropPlan(tuple(dict.fromkeys(found["folder"])), tuple(found["image"]), model, tuple(found["lora"]),
                    tuple(ignored))


def _kind(path: Path) -> tuple[str, str]:
    """("folder" | "image" | "model" | "lora" | "ignored", why it is ignored)."""
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return "model", ""
        if _holds_images(path):
            return "folder", ""
        if any(p.suffix.lower() in (*SAFETENSORS_SUFFIXES, *_PICKLED_MODELS) for p in _entries(path)):
            return "ignored", "a folder of model files, not images: drop the model or LoRA files themselves"
        return "ignored", "a folder without images"
    if not path.is_file():
        return "ignored", "not found"
    if is_image_path(path):
        return "image", ""
    suffix = path.suffix.lower()
    if suffix in _PICKLED_MODELS:
        return "model", ""
    if suffix in SAFETENSORS_SUFFIXES:
        return _safetensors_kind(path)
    return "ignored", "not an image, a base model or a LoRA"


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(folder / e.name for e in it if not e.name.startswith("."))
    except OSError:
        return []


def _image_subfolders(folder: Path) -> list[Path]:
    return [sub.resolve() for sub in _entries(folder)
            if sub.is_dir() and not (sub / "model_index.json").is_file() and _holds_images(sub)]


def _holds_images(root: Path) -> bool:
    """Images in `root` itself or in its kohya `N_name` subfolders: what the dataset scan would find."""
    return any(is_image_path(p) and p.is_file() for folder, _ in dataset_folders(root) for p in _entries(folder))


def _safetensors_kind(path: Path) -> tuple[str, str]:
    """A LoRA has adapter keys (kohya `lora_unet_…`, peft `lora_A`, LyCORIS…); a base model has the full
    UNet under `model.diffusion_model.`; anything else (a VAE, an embedding, a diffusers part) is neither."""
    try:
        keys = read_safetensors_header(path).tensors
    except StudioError as exc:
        return "ignored", str(exc).removeprefix(f"{path.name}: ")
    if any(parse_key(k) is not None for k in keys):
        return "lora", ""
    if any(k.startswith(_UNET) for k in keys):
        return "model", ""
    return "ignored", "a .safetensors file that is neither a base model nor a LoRA (a VAE or an embedding?)"
