"""Reading a LoRA file in any of the layouts users download into the one `LoraFile` representation.

The reader is strict where silence would hurt: a key it cannot place is reported by name (ComfyUI would
skip it and log `lora key not loaded`), a factor with the wrong shape names its module, and NaN/Inf weights
are found before they turn a preview black. `read_lora_report` collects those problems for `inspect`;
`read_lora` refuses a file that has any.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.errors import LoraFormatError, ModelLoadError, UnsafeFileError
from studio.formats.family import FamilyGuess, ModuleEvidence, detect_family
from studio.formats.layouts import not_lora_reason, parse_key
from studio.formats.lora_file import LoraFile, LoraModule
from studio.formats.names import canonical_kohya_name, kohya_name_for
from studio.models.base_files import PICKLE_SUFFIXES

_ADAPTER_META_KEY = "lora_adapter_metadata"  # where diffusers' save_lora_weights keeps peft's LoraConfig
_PEFT_PREFIX = {"unet": "unet", "te": "text_encoder", "te1": "text_encoder", "te2": "text_encoder_2"}


@dataclass
class ReadResult:
    """A LoRA as read, with every problem found, so `inspect` can show them all at once."""

    lora: LoraFile
    guess: FamilyGuess
    layouts: tuple[str, ...]
    unknown_keys: list[str] = field(default_factory=list)
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # algorithm → keys
    nonfinite: list[str] = field(default_factory=list)  # module names with NaN/Inf
    bad_shapes: list[str] = field(default_factory=list)  # one sentence per module
    ignored: list[str] = field(default_factory=list)  # keys deliberately skipped (bundled embeddings)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Sentences for each reason this file cannot be mixed or baked as it is."""
        out = []
        if self.unknown_keys:
            out.append(f"{len(self.unknown_keys)} key(s) match no LoRA layout: {some(self.unknown_keys)}")
        for algo, keys in sorted(self.unsupported.items()):
            out.append(f"{algo} modules are not supported ({len(keys)} key(s): {some(keys)})")
        if self.nonfinite:
            out.append(f"NaN or infinite weights in {len(self.nonfinite)} module(s): {some(self.nonfinite)}")
        out.extend(self.bad_shapes)
        return out


def some(items: list[str], n: int = 5, *, sep: str = ", ", quote: str = "`") -> str:
    """The first `n` items, then "and N more": a message names what is wrong without listing thousands."""
    shown = sep.join(f"{quote}{i}{quote}" for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a `.safetensors` file; pickled formats are refused (they can run code)."""
    from studio.safe_read import regular_file

    path = Path(path).expanduser()
    # a folder, a FIFO, a symlink loop exist: "not found" would be a wrong answer, and a FIFO would block the open
    regular_file(path, "LoRA file", error=ModelLoadError, hint="choose a .safetensors LoRA file")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(f"{path.name}: pickled files ({path.suffix}) can run code when loaded; "
                              "LoRA Studio reads only .safetensors",
                              hint="convert it to .safetensors with a tool you trust, or get the .safetensors version")
    from studio.models.safe_load import load_safetensors

    try:  # the one header check first: a damaged file is told in our words, not the Rust library's
        return load_safetensors(path)
    except ModelLoadError as exc:
        raise LoraFormatError(f"{path.name}: not a readable .safetensors file ({exc})",
                              hint=exc.hint or "the download may be incomplete; download it again") from None


def read_lora_report(path: str | Path) -> ReadResult:
    """Read `path` and report every problem; raises only when the file is unreadable or not a LoRA at all."""
    return read_state_dict(*load_tensors(path), name=Path(path).name)


def read_lora(path: str | Path, *, allow_nonfinite: bool = False) -> LoraFile:
    """Read `path` into a `LoraFile`; LoraFormatError naming every key/module that cannot be used."""
    result = read_lora_report(path)
    problems = [p for p in result.problems if not (allow_nonfinite and p.startswith("NaN"))]
    if problems:
        raise LoraFormatError(f"{Path(path).name}: " + "; ".join(problems),
                              hint="run `lora-studio inspect` on it for the full report")
    return result.lora


def read_state_dict(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str], *,
                    name: str = "the file") -> ReadResult:
    groups: dict[tuple[str, str, bool], dict[str, torch.Tensor]] = {}
    layouts: dict[tuple[str, str, bool], set[str]] = {}
    unknown: list[str] = []
    unsupported: dict[str, list[str]] = {}
    ignored: list[str] = []
    for key, tensor in tensors.items():
        if key.startswith("bundle_emb."):  # embeddings bundled with the LoRA (A1111): not weights to mix
            ignored.append(key)
            continue
        ref = parse_key(key)
        if ref is None:
            unknown.append(key)
            continue
        if ref.unsupported:
            unsupported.setdefault(ref.unsupported, []).append(key)
            continue
        gkey = (ref.component, ref.module, ref.named)
        parts = groups.setdefault(gkey, {})
        if ref.part in parts:
            raise LoraFormatError(f"{name}: two keys give `{ref.part}` of module `{ref.module}` "
                                  f"(one is `{key}`)")
        parts[ref.part] = tensor
        layouts.setdefault(gkey, set()).add(ref.layout)
    if not groups:
        keys = list(tensors)
        what = not_lora_reason(keys)
        if unsupported:
            raise LoraFormatError(f"{name}: only unsupported adapter types: "
                                  + ", ".join(f"{a} ({len(k)} keys)" for a, k in unsupported.items()))
        raise LoraFormatError(f"{name}: this is {what}, not a LoRA (no LoRA keys among its {len(keys)} tensors, "
                              f"e.g. {some(keys, 3)})" if keys else f"{name}: the file holds no tensors",
                              hint="choose a LoRA file (kohya, peft/diffusers or LyCORIS layout)")

    evidence = [ModuleEvidence(c, m, parts={part: tuple(t.shape) for part, t in p.items()})
                for (c, m, _), p in groups.items()]
    guess = detect_family(metadata, evidence)
    family = guess.family
    alphas = _peft_alphas(metadata, name)

    lf = LoraFile(metadata=dict(metadata), family=family)
    # the modules' layouts; a LyCORIS module's `alpha` key looks like kohya's, so LyCORIS wins
    found = tuple(sorted({"lycoris" if "lycoris" in used else min(used) for used in layouts.values()}))
    result = ReadResult(lora=lf, guess=guess, layouts=found, unknown_keys=unknown, unsupported=unsupported,
                        ignored=ignored)
    if ignored:
        result.warnings.append(f"{len(ignored)} bundled embedding tensor(s) ignored")
    if guess.conflict:
        result.warnings.append(f"base model: {guess.conflict}")
    for (component, module, named), parts in groups.items():
        try:
            if named:
                kname = canonical_kohya_name(module, family)
            else:  # a path in SDXL's `text_encoder.` is its first encoder's
                te1 = component == "te" and family == "sdxl"
                kname = kohya_name_for("te1" if te1 else component, module, family)
        except LoraFormatError as exc:
            result.bad_shapes.append(str(exc))
            continue
        if kname in lf.modules:
            raise LoraFormatError(f"{name}: module `{kname}` is given twice (as `{module}` and another name)")
        if not named and "alpha" not in parts:
            alpha = _alpha_for(alphas, component, module, name)
            if alpha is not None:
                parts = {**parts, "alpha": torch.tensor(alpha)}
        module_obj, problem = _build_module(kname, parts)
        if problem:
            result.bad_shapes.append(problem)
            continue
        if module_obj is None:
            result.warnings.append(f"`{kname}` has only an alpha and no weights; skipped")
            continue
        if (not all(_all_finite(t) for t in module_obj.tensors())
                or (module_obj.alpha is not None and not math.isfinite(module_obj.alpha))):
            result.nonfinite.append(kname)
        lf.modules[kname] = module_obj
    return result


def _peft_alphas(metadata: Mapping[str, str], name: str = "the file") -> dict[str, dict]:
    """peft LoraConfig fields per component from diffusers' `lora_adapter_metadata` (alpha, patterns)."""
    try:
        data = json.loads(metadata.get(_ADAPTER_META_KEY) or "{}")
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep; ValueError: a 5000-digit number
        raise LoraFormatError(f"{name}: its `{_ADAPTER_META_KEY}` is not valid JSON, so the alphas (strengths) of "
                              "its modules are unknown", hint="the file is damaged; download it again") from None
    out: dict[str, dict] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            prefix, _, field_name = key.partition(".")
            out.setdefault(prefix, {})[field_name] = value
    return out


def _alpha_for(alphas: Mapping[str, dict], component: str, path: str, name: str = "the file") -> float | None:
    cfg = alphas.get(_PEFT_PREFIX[component])
    if not cfg:
        return None
    patterns = cfg.get("alpha_pattern") or {}
    if not isinstance(patterns, Mapping):
        raise LoraFormatError(f"{name}: `{_ADAPTER_META_KEY}` has an alpha_pattern that is not a map of patterns "
                              "to numbers")
    for pattern, value in patterns.items():
        if _pattern_matches(str(pattern), path, name):
            return _alpha_number(value, f"alpha_pattern `{pattern}`", name)
    value = cfg.get("lora_alpha")
    return None if value is None else _alpha_number(value, "lora_alpha", name)


def _alpha_number(value: object, what: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LoraFormatError(f"{name}: `{_ADAPTER_META_KEY}` gives {what} as {str(value)[:40]!r}, not a finite number")
    return float(value)


_UNBOUNDED = re.compile(r"[*+]|\{\d*,\}")


def _pattern_matches(pattern: str, path: str, name: str) -> bool:
    """peft's rule, `(.*\.)?(<pattern>)$`, for a pattern taken from a downloaded file: it must compile, and
    must not be able to backtrack for ever (a quantified group, or more than two unbounded repeats, can)."""
    if len(pattern) > 500 or re.search(r"\)[*+?{]", pattern) or len(_UNBOUNDED.findall(pattern)) > 2:
        raise LoraFormatError(f"{name}: `{_ADAPTER_META_KEY}` has an alpha_pattern too complex to match safely: "
                              f"`{pattern[:60]}`", hint="the file was made by an unusual tool or was crafted")
    try:
        return re.match(rf"(.*\.)?({pattern})$", path) is not None
    except re.error as exc:
        raise LoraFormatError(f"{name}: `{_ADAPTER_META_KEY}` has an invalid alpha_pattern `{pattern[:60]}` ({exc})",
                              hint="the file is damaged or was made by an unusual tool") from None


def _all_finite(t: torch.Tensor) -> bool:
    """isfinite for every dtype a safetensors file can hold: torch has no isfinite for float8 (it is checked in
    float32, exactly), integers and booleans are always finite."""
    if not (t.is_floating_point() or t.is_complex()):
        return True
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = t.float()
    return bool(torch.isfinite(t).all())


def _build_module(name: str, parts: dict[str, torch.Tensor]) -> tuple[LoraModule | None, str]:
    """(module, "") or (None, a sentence saying what is wrong with its shapes)."""
    alpha_t = parts.get("alpha")
    alpha = None
    if alpha_t is not None:
        if alpha_t.numel() != 1:
            return None, f"`{name}`: alpha has shape {tuple(alpha_t.shape)}, expected a single number"
        alpha = float(alpha_t.float().item())
    dora = parts.get("dora_scale")
    magnitude = parts.get("magnitude")
    weights = {k: v for k, v in parts.items() if k not in ("alpha", "dora_scale", "magnitude")}
    if not weights:
        return None, ""
    if set(weights) <= {"down", "up", "mid"}:
        module, problem = _lora_module(name, weights, alpha)
    elif any(all(k.startswith(p) for k in weights) for p in ("hada_", "lokr_")):
        algo = "loha" if next(iter(weights)).startswith("hada_") else "lokr"
        module, problem = LoraModule(name=name, algo=algo, params=weights, alpha=alpha), ""
    else:
        return None, f"`{name}`: mixes adapter types ({', '.join(sorted(weights))})"
    if problem:
        return None, problem
    assert module is not None
    if module.algo != "lora":
        try:
            delta = module.delta_weight()
        except (KeyError, RuntimeError, ValueError) as exc:
            missing = isinstance(exc, KeyError) and str(exc)
            why = f"missing {exc}" if missing else "factor shapes do not fit together"
            return None, f"`{name}`: {module.algo} factors incomplete or inconsistent ({why})"
        out_features = delta.shape[0]
    else:
        assert module.up is not None
        out_features = module.up.shape[0]
    if magnitude is not None:  # peft DoRA: one magnitude per output row
        if magnitude.numel() != out_features:
            return None, f"`{name}`: DoRA magnitude has {magnitude.numel()} values for {out_features} outputs"
        ndim = module.up.dim() if module.up is not None else 2
        dora = magnitude.reshape((out_features,) + (1,) * (ndim - 1))
    module.dora_scale = dora
    return module, ""


def _lora_module(name: str, w: dict[str, torch.Tensor], alpha: float | None) -> tuple[LoraModule | None, str]:
    down, up, mid = w.get("down"), w.get("up"), w.get("mid")
    if down is None or up is None:
        have = "down" if down is not None else "up"
        return None, f"`{name}`: has a {have} weight but no {'up' if have == 'down' else 'down'} weight"
    if down.dim() not in (2, 4) or up.dim() != down.dim():
        return None, (f"`{name}`: down {tuple(down.shape)} and up {tuple(up.shape)} are not a linear or conv pair")
    rank = down.shape[0]
    if mid is not None:
        if mid.dim() != 4 or mid.shape[0] != up.shape[1] or mid.shape[1] != rank:
            return None, f"`{name}`: mid {tuple(mid.shape)} does not fit down {tuple(down.shape)} / up {tuple(up.shape)}"
    elif up.shape[1] != rank:
        return None, f"`{name}`: up {tuple(up.shape)} has rank {up.shape[1]}, down {tuple(down.shape)} rank {rank}"
    if up.dim() == 4 and tuple(up.shape[2:]) != (1, 1):
        return None, f"`{name}`: up {tuple(up.shape)} should have a 1×1 kernel"
    return LoraModule(name=name, down=down, up=up, mid=mid, alpha=alpha), ""
