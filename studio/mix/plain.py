"""A "plain LoRA" copy of any LoRA file: its full ΔW (DoRA magnitude included) refactored by SVD to one rank.

Loaders disagree about LoHa, LoKr, Tucker LoCon and DoRA (`studio.formats.loaders`), but all read
`lora_down`/`lora_up`/`alpha` the same way, so the copy works in any WebUI, at the cost of the reported SVD
error. Its ΔW and factorisation are the mixer's, so a copy renders what the mixer previews of the original.
A DoRA file needs the base model it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.errors import ConfigError
from studio.formats.compat import compat_report
from studio.formats.compat_report import CompatReport, write_sidecar
from studio.formats.kohya import save_lora_file
from studio.formats.lora_file import LoraFile
from studio.mix.merge import BaseWeight, MergeResult, merge
from studio.safe_names import refuse_unsafe_name


@dataclass(frozen=True)
class PlainCopy:
    path: Path
    merge: MergeResult
    rank: int
    report: CompatReport


def needs_base_model(lf: LoraFile) -> bool:
    return any(m.dora_scale is not None for m in lf.modules.values())


def write_plain_copy(lf: LoraFile, out: str | Path, rank: int, *, source: str | Path | None = None,
                     base_weight: BaseWeight | None = None, dtype: str = "fp16") -> PlainCopy:
    """Write the plain copy of `lf` to `out` (and its compatibility sidecar); never over `source`."""
    out = Path(out)
    refuse_unsafe_name(out, "the plain-LoRA copy")
    if source is not None and Path(source).expanduser().resolve() == out.expanduser().resolve():
        raise ConfigError(f"the output {out} is the file being copied; choose another name",
                          hint="LoRA Studio never changes the original")
    # plain LoRA modules of rank ≤ `rank` (a module whose ΔW has a lower rank keeps it, exactly)
    result = merge({name: [(m, 1.0)] for name, m in lf.modules.items()}, lf.family, rank=rank,
                   base_weight=base_weight, metadata=lf.metadata)
    meta = {**lf.metadata, "ls_plain_copy_of": Path(source).name if source is not None else "",
            "ls_plain_copy_rank": str(rank), "ls_plain_copy_error": f"{result.overall_error:.6g}",
            "ss_network_module": "networks.lora"}
    meta.pop("ss_network_args", None)  # the copy is a plain LoRA, whatever the original's network was
    save_lora_file(result.lora, out, dtype=dtype, metadata=meta)
    report = compat_report(result.lora)
    write_sidecar(out, report)
    return PlainCopy(path=out, merge=result, rank=rank, report=report)


def base_weights_from_model(model: str | Path, lf: LoraFile, file_name: str) -> BaseWeight:
    """kohya name → the base model's weight for that layer, after checking that `lf` fits the model."""
    from studio.mix.targets import check_fits, model_targets
    from studio.models.load import load_components

    components = load_components(Path(model))
    targets = model_targets(components.unet, components.text_encoders, components.family)
    check_fits(lf, file_name, targets, components.family)
    return lambda name: targets[name].module.weight.detach()
