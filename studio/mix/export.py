"""Writing a mix as one LoRA file (concatenated ranks or SVD to a chosen rank), atomically, with provenance and
its per-loader compatibility report beside it (`<name>.compat.json`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.errors import ConfigError
from studio.formats.compat import compat_report
from studio.formats.compat_report import CompatReport, write_sidecar
from studio.formats.kohya import DTYPES, save_lora_file
from studio.mix.merge import BaseWeight, MergeResult, merge
from studio.mix.provenance import lora_mix_metadata
from studio.mix.recipe import Source, contributions, mix_family
from studio.safe_names import refuse_unsafe_name


@dataclass
class ExportResult:
    path: Path
    merge: MergeResult
    report: CompatReport  # per-loader compatibility, also in `<name>.compat.json`


def refuse_overwriting_sources(out: Path, paths: Sequence[str | Path]) -> None:
    target = out.expanduser().resolve()
    for p in paths:
        if Path(p).expanduser().resolve() == target:
            raise ConfigError(f"the output {out} is one of the input files; choose another name",
                              hint="LoRA Studio never changes the files you mix")


def check_finite_result(result: MergeResult, dtype: str) -> None:
    """Refuse to write a merge whose factors are NaN/Inf in the output precision (large strengths overflow fp16),
    naming the first such module; the file would load everywhere and break every image."""
    import torch

    target = DTYPES.get(dtype, torch.float32)
    for name, module in result.lora.modules.items():
        floats = [t for t in module.tensors() if t.is_floating_point()]
        if not all(bool(torch.isfinite(t.to(target)).all()) for t in floats):
            raise ConfigError(f"the merged LoRA would hold infinite or NaN weights in {name} ({dtype}): the "
                              "strengths are too large for this precision; nothing was written",
                              hint="lower the strengths, or write fp32 (--dtype fp32)")


def export_merged(sources: Sequence[Source], out: str | Path, *, rank: int | None = None, dtype: str = "fp16",
                  base_weight: BaseWeight | None = None, model_family: str | None = None) -> ExportResult:
    out = Path(out)
    if not sources:
        raise ConfigError("nothing to merge: add at least one LoRA")
    refuse_unsafe_name(out, "the merged LoRA")
    refuse_overwriting_sources(out, [s.entry.path for s in sources])
    family = mix_family(sources, model_family)
    result = merge(contributions(sources), family, rank=rank, base_weight=base_weight)
    used_rank = rank if rank is not None else max(m.rank for m in result.lora.modules.values())
    meta = lora_mix_metadata(sources, family, title=out.stem, method=result.method, rank=used_rank,
                             overall_error=result.overall_error if rank is not None else None)
    check_finite_result(result, dtype)
    save_lora_file(result.lora, out, dtype=dtype, metadata=meta)
    report = compat_report(result.lora)
    write_sidecar(out, report)
    return ExportResult(path=out, merge=result, report=report)
