"""The per-loader compatibility report of one LoRA file, as data, text and its `<name>.compat.json` sidecar.

A user learns that a WebUI ignores part of their file only when the picture looks wrong; the report says
it at export time instead. This module only holds, prints and stores it (`studio.formats.compat` computes
it), and is torch-free so the window can read a sidecar without loading torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.codec import CodecError, from_data, to_data

SIDECAR_SUFFIX = ".compat.json"
SIDECAR_FORMAT = "lora-studio-compat"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class LoaderVerdict:
    """One loader on one file: does every key load, and is the result what was trained."""

    loader: str  # key in studio.formats.loaders.LOADERS
    name: str
    version: str
    loads_all_keys: bool
    faithful: bool
    refused: bool = False  # the loader rejects the whole file
    keys_not_loaded: int = 0
    total_keys: int = 0
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """`ok`, `wrong` (loads, renders otherwise), `partial` (some keys ignored) or `refused`."""
        if self.refused:
            return "refused"
        if not self.loads_all_keys:
            return "partial"
        return "ok" if self.faithful else "wrong"

    def line(self) -> str:
        text = {"ok": f"all {self.total_keys} keys load, result as trained",
                "wrong": "all keys load, but the result differs from what was trained",
                "partial": f"{self.keys_not_loaded} of {self.total_keys} keys not loaded, result differs",
                "refused": "refuses the whole file"}[self.status]
        return f"{self.name} {self.version}: {self.status} - {text}"


@dataclass(frozen=True)
class CompatReport:
    """Every loader's verdict on one file, and the features (with module counts) they were judged on."""

    features: tuple[tuple[str, int], ...]
    verdicts: tuple[LoaderVerdict, ...]

    @property
    def plain_copy_advised(self) -> bool:
        """True when some loader cannot render the file as trained: a plain-LoRA copy would fix that."""
        return any(not v.faithful for v in self.verdicts)

    def lines(self, *, notes: bool = True) -> list[str]:
        """ASCII only: the CLI prints these, and a Windows console redirected to a file encodes in cp1252."""
        out = []
        for v in self.verdicts:
            out.append(v.line())
            if notes:
                out.extend(f"    {n}" for n in v.notes)
        if self.plain_copy_advised:
            out.append("a plain-LoRA copy (the full delta refactored by SVD) loads as trained everywhere")
        return out


def report_to_dict(report: CompatReport, file_name: str = "") -> dict[str, Any]:
    """The sidecar's JSON: each verdict's fields (through the one codec) plus its `status`, for other tools."""
    return {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "file": file_name,
            "features": dict(report.features), "plain_copy_advised": report.plain_copy_advised,
            "loaders": [{**to_data(v), "status": v.status} for v in report.verdicts]}


def report_from_dict(data: dict[str, Any]) -> CompatReport:
    """The report a sidecar holds; ValueError when it is not one of ours (or a newer version)."""
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ValueError("not a LoRA Studio compatibility report")
    if data.get("version") != SIDECAR_VERSION:
        raise ValueError(f"compatibility report version {data.get('version')!r}; this LoRA Studio reads "
                         f"{SIDECAR_VERSION}")
    try:
        verdicts = tuple(from_data({k: x for k, x in v.items() if k != "status"}, LoaderVerdict, where="loader")
                         for v in data["loaders"])
        features = tuple(from_data(data.get("features", {}), dict[str, int], where="features").items())
    except (KeyError, TypeError, AttributeError, CodecError) as exc:
        raise ValueError(f"damaged compatibility report ({exc})") from None
    return CompatReport(features=features, verdicts=verdicts)


def sidecar_path(lora_path: str | Path) -> Path:
    return Path(lora_path).with_suffix(SIDECAR_SUFFIX)


def write_sidecar(lora_path: str | Path, report: CompatReport) -> Path:
    """Write the report beside the LoRA, atomically (an old sidecar stays whole if this fails)."""
    from studio.fileio import atomic_write_text

    path = sidecar_path(lora_path)
    # ASCII escapes: a file name that is not UTF-8 (surrogate-escaped on Linux) is written as \udcff, which
    # reads back as the same name, where UTF-8 text could not hold it
    text = json.dumps(report_to_dict(report, Path(lora_path).name), ensure_ascii=True, indent=2)
    atomic_write_text(path, text + "\n")
    return path


def read_sidecar(lora_path: str | Path) -> CompatReport | None:
    """The sidecar's report, or None when there is none or it cannot be read (it is advice, not data)."""
    try:
        return report_from_dict(json.loads(sidecar_path(lora_path).read_text(encoding="utf-8-sig")))
    except (OSError, ValueError, RecursionError):
        return None
