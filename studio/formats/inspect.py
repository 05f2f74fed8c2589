"""What a LoRA file is, in a few lines: base family, ranks, alphas, targets, algorithms and metadata.

Users download LoRAs with little or wrong documentation; before mixing one they want to know which base
model it is for, how big it is, what it was trained on and which words trigger it, and every problem the
reader found. `format_summary` prints it for people, `summary_to_json` for scripts (`inspect --json`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.formats.compat import compat_report
from studio.formats.compat_report import CompatReport, report_to_dict
from studio.formats.family import family_label
from studio.formats.names import target_of
from studio.formats.peek import top_tags
from studio.formats.reader import ReadResult, read_lora_report

KOHYA_LAYOUTS = ("kohya", "lycoris")  # what the loader rules (studio.formats.loaders) describe
TARGET_LABELS = {"lora_unet": "UNet", "lora_te": "text encoder", "lora_te1": "text encoder 1 (CLIP-L)",
                 "lora_te2": "text encoder 2 (OpenCLIP-G)", "other": "other"}


@dataclass
class MixSource:
    """One LoRA a merged file was made from, as recorded in its `ls_mix_sources` metadata."""

    name: str
    sha256: str = ""
    strength: float = 1.0
    unet: float | None = None
    te: float | None = None
    blocks: dict[str, float] = field(default_factory=dict)


@dataclass
class LoraSummary:
    path: str
    size_bytes: int
    name: str
    family: str
    family_evidence: list[str]
    layouts: list[str]
    algorithms: list[str]
    ranks: list[int]
    alphas: list[float]
    modules: int
    by_target: dict[str, int]
    base_model: str = ""
    resolution: str = ""
    steps: str = ""
    epochs: str = ""
    network: str = ""
    trigger_phrase: str = ""
    top_tags: list[tuple[str, int]] = field(default_factory=list)
    merged_from: str = ""
    mix_sources: list[MixSource] = field(default_factory=list)
    mix_method: str = ""
    metadata_keys: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compatibility: CompatReport | None = None  # per loader: every key loads? result as trained?


def mix_sources(meta: dict[str, str]) -> list[MixSource]:
    try:
        items = json.loads(meta.get("ls_mix_sources") or "[]")
    except (ValueError, RecursionError):
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "name" in item:
            try:
                out.append(MixSource(name=str(item["name"]), sha256=str(item.get("sha256", "")),
                                     strength=float(item.get("strength", 1.0)),
                                     unet=_opt_float(item.get("unet")), te=_opt_float(item.get("te")),
                                     blocks={str(k): float(v) for k, v in (item.get("blocks") or {}).items()}))
            except (TypeError, ValueError, AttributeError):  # a record written by another tool, or damaged
                continue
    return out


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def summarize(path: str | Path, result: ReadResult | None = None) -> LoraSummary:
    path = Path(path)
    result = result or read_lora_report(path)
    lf, meta = result.lora, result.lora.metadata
    network = meta.get("ss_network_module", "")
    if network and meta.get("ss_network_args"):
        network += f" {meta['ss_network_args']}"
    version = meta.get("ss_base_model_version") or meta.get("modelspec.architecture", "")
    report = compat_report(lf) if lf.modules else None
    # `lora`, `locon`, `locon-tucker`, `loha`, `lokr`, and `dora` when any module has it
    algorithms = sorted({"dora" if f.startswith("dora") else f for f, _ in report.features}) if report else []
    return LoraSummary(
        path=str(path), size_bytes=path.stat().st_size if path.exists() else 0,
        name=meta.get("ss_output_name") or meta.get("modelspec.title") or path.stem,
        family=lf.family, family_evidence=list(result.guess.evidence), layouts=list(result.layouts),
        algorithms=algorithms, ranks=lf.ranks(), alphas=lf.alphas(), modules=len(lf.modules),
        by_target=dict(sorted(Counter(target_of(n) for n in lf.modules).items())),
        base_model=" / ".join(x for x in (meta.get("ss_sd_model_name", ""), version) if x),
        resolution=meta.get("ss_resolution") or meta.get("modelspec.resolution", ""),
        steps=meta.get("ss_steps") or meta.get("ss_max_train_steps", ""),
        epochs=meta.get("ss_epoch") or meta.get("ss_num_epochs", ""), network=network,
        trigger_phrase=meta.get("modelspec.trigger_phrase", ""), top_tags=top_tags(meta),
        merged_from=meta.get("modelspec.merged_from", ""), mix_sources=mix_sources(meta),
        mix_method=meta.get("ls_mix_method", ""), metadata_keys=len(meta),
        problems=result.problems, warnings=list(result.warnings),
        compatibility=report,
    )


def summary_to_json(summary: LoraSummary) -> str:
    data = asdict(summary)
    data["compatibility"] = report_to_dict(summary.compatibility) if summary.compatibility else None
    data["top_tags"] = [{"tag": t, "count": c} for t, c in summary.top_tags]
    return json.dumps(data, ensure_ascii=False, indent=2)


def format_summary(s: LoraSummary, *, loader_notes: bool = False) -> str:
    """The summary for people; `loader_notes` adds why each loader falls short (`inspect --loaders`)."""
    lines = [f"{s.name}  ({Path(s.path).name}, {s.size_bytes / 1e6:.1f} MB)"]
    why = f"  [{'; '.join(s.family_evidence)}]" if s.family_evidence else ""
    lines.append(f"base family:  {family_label(s.family)}{why}")
    lines.append(f"algorithm:    {', '.join(s.algorithms) or '-'}   (layout: {', '.join(s.layouts)})")
    lines.append(f"rank:         {', '.join(map(str, s.ranks)) or '-'}")
    lines.append(f"alpha:        {', '.join(f'{a:g}' for a in s.alphas) or 'none (scale 1)'}")
    targets = ", ".join(f"{TARGET_LABELS.get(k, k)} {v}" for k, v in s.by_target.items())
    lines.append(f"modules:      {s.modules}  ({targets})")
    for label, value in (("base model", s.base_model), ("resolution", s.resolution), ("steps", s.steps),
                         ("epochs", s.epochs), ("network", s.network), ("trigger", s.trigger_phrase)):
        if value:
            lines.append(f"{label + ':':<13} {value}")
    if s.top_tags:
        lines.append("top tags:     " + ", ".join(f"{t} ({c})" for t, c in s.top_tags))
    if s.mix_sources:
        lines.append(f"merged from:  {len(s.mix_sources)} LoRA(s)" + (f", {s.mix_method}" if s.mix_method else ""))
        for src in s.mix_sources:
            parts = [f"strength {src.strength:g}"]
            parts += [f"{part} {v:g}" for part, v in (("UNet", src.unet), ("TE", src.te)) if v is not None]
            if src.blocks:
                parts.append("blocks " + ",".join(f"{k}={v:g}" for k, v in src.blocks.items()))
            lines.append(f"  - {src.name}: {', '.join(parts)}" + (f"  sha256 {src.sha256[:12]}" if src.sha256 else ""))
    elif s.merged_from:
        lines.append(f"merged from:  {s.merged_from}")
    lines.append(f"metadata:     {s.metadata_keys} key(s)")
    if s.compatibility is not None:
        lines.append("loaders:")
        lines.extend(f"  {line}" for line in s.compatibility.lines(notes=loader_notes))
        other = [x for x in s.layouts if x not in KOHYA_LAYOUTS]
        if other:
            lines.append(f"  (these rules are for the kohya layout; this file is in the {', '.join(other)} layout, "
                         "which not every loader reads: a plain-LoRA copy is written in the kohya layout)")
        if s.compatibility.plain_copy_advised and not loader_notes:
            lines.append("  (why: lora-studio inspect --loaders; a copy: lora-studio plain FILE --rank R -o OUT)")
    lines += [f"warning: {w}" for w in s.warnings] + [f"problem: {p}" for p in s.problems]
    return "\n".join(lines)
