"""Writing LoRAs in the kohya layout that A1111/Forge, ComfyUI and diffusers all load.

One module = `<name>.lora_down.weight` (r × in), `<name>.lora_up.weight` (out × r) and `<name>.alpha`, with
`<name>` from `studio.formats.names`. DoRA adds `<name>.dora_scale` (out, 1[, 1, 1]), rescaled so that
ComfyUI and Forge rebuild peft's weight (`comfyui_dora_scale`; docs/TRAINING.md, "DoRA in the loaders").
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors.torch import save as save_tensors

from studio.errors import LoraFormatError
from studio.fileio import atomic_write_bytes
from studio.formats.layouts import LYCORIS_PARTS
from studio.formats.lora_file import LoraFile, LoraModule
from studio.formats.names import COMPONENT_OF_PREFIX, kohya_name_for

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}

# (kohya prefix, module path) → that layer's base weight, as the user's checkpoint holds it
BaseWeight = Callable[[str, str], torch.Tensor]


def _split_peft_key(key: str) -> tuple[str, str]:
    for marker in (".lora_A.", ".lora_B.", ".lora_magnitude_vector"):
        if marker in key:
            return key.split(marker)[0].removeprefix("base_model.model."), marker.strip(".")
    path, _, last = key.rpartition(".")
    if last in LYCORIS_PARTS:
        return path.removeprefix("base_model.model."), last
    raise LoraFormatError(f"unexpected key in the trained adapter: {key}")


def lora_file_from_peft(state_dicts: Mapping[str, Mapping[str, torch.Tensor]], alpha: float, family: str,
                        metadata: Mapping[str, str] | None = None, *,
                        scales: Mapping[str, Mapping[str, object]] | None = None,
                        initial: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                        base_weight: BaseWeight | None = None) -> LoraFile:
    """Build a `LoraFile` from peft state dicts keyed by kohya prefix (`lora_unet`, `lora_te`, …).

    `scales` (prefix → module path → object with `.scale`): the factor peft really applies to each layer
    (alpha/r, rsLoRA's alpha/√r, a conv layer's own alpha), written as alpha = scale × rank so every loader
    computes peft's ΔW; without it, `alpha` is used for every module. `initial` (PiSSA): the adapter's
    starting weights, part of the base during training, so the export is B·A − B₀·A₀, exactly one LoRA of
    twice the rank. `base_weight` is needed for DoRA (`comfyui_dora_scale`).
    """
    lf = LoraFile(family=family, metadata=dict(metadata or {}))
    for prefix, sd in state_dicts.items():
        parts = _group_peft(sd)
        start = _group_peft(initial[prefix]) if initial and prefix in initial else {}
        for path, found in parts.items():
            if "lora_A" not in found or "lora_B" not in found:
                raise LoraFormatError(f"{path}: adapter has only {sorted(found)}")
            name = kohya_name_for(COMPONENT_OF_PREFIX[prefix], path, family)
            down, up = found["lora_A"].detach(), found["lora_B"].detach()
            module_alpha = (float(alpha) if scales is None
                            else float(getattr(scales[prefix][path], "scale")) * down.shape[0])
            dora_scale = None
            if "lora_magnitude_vector" in found:
                if base_weight is None:
                    raise LoraFormatError(f"{path}: a DoRA export needs the base model's weights")
                base = base_weight(prefix, path)
                delta = LoraModule(name=name, down=down, up=up, alpha=module_alpha).delta_weight(tuple(base.shape))
                dora_scale = comfyui_dora_scale(found["lora_magnitude_vector"], delta, base)
            if path in start:
                down = torch.cat([down, start[path]["lora_A"].to(down)], dim=0)
                up = torch.cat([up, -start[path]["lora_B"].to(up)], dim=1)
                module_alpha *= 2
            lf.modules[name] = LoraModule(name=name, down=down, up=up, alpha=module_alpha, dora_scale=dora_scale)
    return lf


def _group_peft(sd: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in sd.items():
        path, kind = _split_peft_key(key)
        parts.setdefault(path, {})[kind] = tensor
    return parts


def lycoris_file_from_peft(state_dicts: Mapping[str, Mapping[str, torch.Tensor]], family: str,
                           scales: Mapping[str, Mapping[str, object]],
                           metadata: Mapping[str, str] | None = None) -> LoraFile:
    """Build a LyCORIS-layout `LoraFile` (`hada_*` / `lokr_*` keys) from peft LoHa/LoKr state dicts.

    peft's factors have LyCORIS's names and shapes; only the scale differs. peft multiplies every update by
    alpha/r; LyCORIS loaders apply alpha/rank only when a factor is low-rank (`hada_*`, `lokr_*_a/_b`), and
    no scale to a LoKr of two full matrices. So LoHa and factorised LoKr get alpha = scale × rank, and a
    full LoKr has the scale folded into w1.
    """
    lf = LoraFile(family=family, metadata=dict(metadata or {}))
    for prefix, sd in state_dicts.items():
        for path, found in _group_peft(sd).items():
            name = kohya_name_for(COMPONENT_OF_PREFIX[prefix], path, family)
            scale = float(getattr(scales[prefix][path], "scale"))
            params = {k: v.detach() for k, v in found.items()}
            if "hada_w1_a" in params:
                algo, rank = "loha", params["hada_w1_b"].shape[0]
                module_alpha: float | None = scale * rank
            elif any(k.startswith("lokr_") for k in params):
                algo = "lokr"
                low = next((params[k] for k in ("lokr_w2_b", "lokr_w1_b") if k in params), None)
                module_alpha = None if low is None else scale * low.shape[0]
                if low is None:  # two full matrices: LyCORIS applies no scale, so it goes into w1
                    params["lokr_w1"] = params["lokr_w1"] * scale
            else:
                raise LoraFormatError(f"{path}: not a LoHa or LoKr adapter ({sorted(params)})")
            lf.modules[name] = LoraModule(name=name, algo=algo, alpha=module_alpha, params=params)
    return lf


@torch.no_grad()
def comfyui_dora_scale(magnitude: torch.Tensor, delta: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """peft's DoRA magnitude as the `dora_scale` ComfyUI and Forge turn back into peft's weight.

    peft merges W' = m · (W + ΔW) / ‖W + ΔW‖, the norm per output row. ComfyUI and Forge read a
    (out, 1[, 1, 1]) `dora_scale` as this output-axis DoRA but divide by the *base* weight's norm ‖W‖
    (ComfyUI `comfy/weight_adapter/base.py` `weight_decompose`; Forge `backend/patcher/lora.py`), so the
    magnitude is written as m · ‖W‖ / ‖W + ΔW‖, which makes their result exactly peft's at strength 1.
    """
    w = base.detach().float()
    m = magnitude.detach().float().reshape(-1).to(w.device)
    if m.numel() != w.shape[0]:
        raise LoraFormatError(f"DoRA magnitude has {m.numel()} values for a layer of {w.shape[0]} outputs")
    merged = w + delta.to(w.device)
    scaled = m * _row_norms(w) / _row_norms(merged).clamp_min(torch.finfo(torch.float32).tiny)
    return scaled.reshape((w.shape[0],) + (1,) * (w.dim() - 1)).cpu()


def _row_norms(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


def to_tensors(lf: LoraFile, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, m in sorted(lf.modules.items()):
        lora = {"lora_down.weight": m.down, "lora_up.weight": m.up, "lora_mid.weight": m.mid}
        alpha = None if m.alpha is None else torch.tensor(float(m.alpha))
        parts = {**(lora if m.algo == "lora" else m.params), "alpha": alpha, "dora_scale": m.dora_scale}
        out.update((f"{name}.{key}", t) for key, t in parts.items() if t is not None)
    return {k: v.detach().to("cpu", dtype=dtype).contiguous() for k, v in out.items()}


def tensor_bytes_hash(blob: bytes) -> str:
    """sha256 of everything after the safetensors header: what A1111 trusts as `sshs_model_hash`."""
    (header_len,) = struct.unpack("<Q", blob[:8])
    return hashlib.sha256(blob[8 + header_len:]).hexdigest()


def utf8_text(text: str) -> str:
    """`text` as valid UTF-8: a file or folder name that is not UTF-8 (its bytes kept as surrogates) gets U+FFFD
    for those bytes, since safetensors metadata must be UTF-8 and a name is only informative there."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def serialize(lf: LoraFile, *, dtype: str = "fp16", metadata: Mapping[str, str] | None = None) -> bytes:
    if dtype not in DTYPES:
        raise LoraFormatError(f"unknown export precision {dtype!r}; use fp16, bf16 or fp32")
    if not lf.modules:
        raise LoraFormatError("nothing to export: the LoRA has no modules")
    tensors = to_tensors(lf, DTYPES[dtype])
    meta = {utf8_text(str(k)): utf8_text(str(v)) for k, v in {**lf.metadata, **(metadata or {})}.items()}
    meta.pop("sshs_model_hash", None)
    # the tensor bytes do not depend on the header, so hash a first serialisation and write the second
    meta["sshs_model_hash"] = tensor_bytes_hash(save_tensors(tensors, metadata=meta))
    return save_tensors(tensors, metadata=meta)


def save_lora_file(lf: LoraFile, path: str | Path, *, dtype: str = "fp16",
                   metadata: Mapping[str, str] | None = None) -> Path:
    path = Path(path)
    atomic_write_bytes(path, serialize(lf, dtype=dtype, metadata=metadata))
    return path


def metadata_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
