"""Per-folder settings: a `folder.toml` inside an image folder overrides the dataset settings for it
(sd-scripts' per-subset config), e.g. `repeats = 4`, `flip = false`, `keep_tokens = 1`, `loss_weight = 1.5`.

Kept in the folder itself, the overrides travel with the images. The file is read strictly, like the
project file: an unknown key is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.config import DatasetConfig, _read_toml, build_section
from studio.train.captions import CaptionPolicy

FOLDER_FILE = "folder.toml"


def _m(help: str, lo: float | None = None, hi: float | None = None) -> dict:
    return {"help": help} if lo is None else {"help": help, "min": lo, "max": hi}


@dataclass(frozen=True)
class FolderSettings:
    repeats: int = field(default=1, metadata=_m("Repeats per epoch.", 1, 1000))
    keep_tokens: int = field(default=0, metadata=_m("Leading tags kept in place.", 0, 255))
    shuffle_captions: bool = field(default=False, metadata=_m("Shuffle tags."))
    caption_dropout: float = field(default=0.0, metadata=_m("Empty-caption probability.", 0.0, 1.0))
    tag_dropout: float = field(default=0.0, metadata=_m("Per-tag dropout probability.", 0.0, 1.0))
    flip: bool = field(default=False, metadata=_m("Random horizontal flip."))
    loss_weight: float = field(default=1.0, metadata=_m("Loss weight of these images.", 0.0, 100.0))

    @property
    def captions(self) -> CaptionPolicy:
        return CaptionPolicy(shuffle=self.shuffle_captions, keep_tokens=self.keep_tokens,
                             tag_dropout=self.tag_dropout, caption_dropout=self.caption_dropout)


def dataset_defaults(cfg: DatasetConfig, repeats: int, *, loss_weight: float = 1.0) -> FolderSettings:
    return FolderSettings(repeats=repeats, keep_tokens=cfg.keep_tokens, shuffle_captions=cfg.shuffle_captions,
                          caption_dropout=cfg.caption_dropout, tag_dropout=cfg.tag_dropout, flip=cfg.flip,
                          loss_weight=loss_weight)


def folder_settings(folder: Path, base: FolderSettings) -> FolderSettings:
    """`base` (the dataset's settings and the folder's `N_` repeats) overlaid with `folder/folder.toml`."""
    path = folder / FOLDER_FILE
    if not path.is_file():
        return base
    return build_section("folder", _read_toml(path), base, str(path))
