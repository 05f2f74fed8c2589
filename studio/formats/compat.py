"""The compatibility report of a `LoraFile`, from the rules in `studio.formats.loaders`.

Each module is reduced to the features a loader must understand (its network type, and its DoRA axis);
each loader's handling of those decides its verdict. Keys are counted as the file holds them: every
tensor of a module plus its `alpha`.
"""

from __future__ import annotations

from collections import Counter

from studio.formats.compat_report import CompatReport, LoaderVerdict
from studio.formats.loaders import LOADERS, Handling, LoaderRules
from studio.formats.lora_file import LoraFile, LoraModule


def network_feature(m: LoraModule) -> str:
    """`lora`, `locon` (a spatial conv), `locon-tucker` (with `lora_mid`), `loha`, `lokr` or `full`."""
    if m.algo != "lora":
        return m.algo
    if m.mid is not None:
        return "locon-tucker"
    if m.down is not None and m.down.dim() == 4 and tuple(m.down.shape[2:]) != (1, 1):
        return "locon"
    return "lora"


def dora_feature(m: LoraModule) -> str | None:
    """`dora-in` for a (1, in[, 1, 1]) scale (normalised per input column), `dora-out` for any other, None without."""
    s = m.dora_scale
    if s is None:
        return None
    return "dora-in" if s.dim() >= 2 and s.shape[0] == 1 and s.numel() > 1 else "dora-out"


def _keys(m: LoraModule) -> int:
    return len(m.tensors()) + (1 if m.alpha is not None else 0)


def _verdict(rules: LoaderRules, lf: LoraFile) -> LoaderVerdict:
    total = sum(_keys(m) for m in lf.modules.values())
    not_loaded = 0
    notes: dict[str, str] = {}  # one per feature the loader does not render exactly
    refused = False
    for m in lf.modules.values():
        for feature in filter(None, (network_feature(m), dora_feature(m))):
            handling = rules.handles(feature)
            if handling is Handling.EXACT:
                continue
            notes.setdefault(feature, f"{feature}: {rules.reason(feature) or handling.value}")
            if handling is Handling.REFUSED:
                refused = True
            elif handling is Handling.DROPPED:
                not_loaded += 1  # the dora_scale key
            elif handling is Handling.SKIPPED:
                not_loaded += _keys(m)
                break  # the whole module is gone; its DoRA part with it
    if refused:
        not_loaded = total
    return LoaderVerdict(loader=rules.key, name=rules.name, version=rules.version, loads_all_keys=not_loaded == 0,
                         faithful=not notes, refused=refused, keys_not_loaded=not_loaded, total_keys=total,
                         notes=tuple(notes.values()))


def compat_report(lf: LoraFile) -> CompatReport:
    counts = Counter(f for m in lf.modules.values() for f in (network_feature(m), dora_feature(m)) if f)
    return CompatReport(features=tuple(sorted(counts.items())),
                        verdicts=tuple(_verdict(rules, lf) for rules in LOADERS))
