"""Which base-model family a file or folder holds, from its keys and tensor shapes alone.

Only a `.safetensors` header is read (a few hundred kB even for SDXL), so the model picker can scan a folder
of multi-GB checkpoints in a moment. What this trainer cannot use (SDXL refiners, SD3 / SD3.5, Flux,
inpainting and instruct-pix2pix UNets) is refused by name before anything is loaded. A prediction type that
nothing in the file states is **epsilon**, never guessed to be `sd2-v`, because epsilon is what nearly every
SD 2.x fine-tune without metadata is; `ModelInfo.prediction_source` says what answered, so the UI can say
when it is only a default worth checking.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import ModelLoadError, StudioError
from studio.formats.names import is_kohya_name
from studio.models import ema as ema_weights
from studio.models.base_files import BASE_MODEL_SUFFIXES, weights_kind
from studio.models.ckpt_scan import scan_ckpt
from studio.models.safetensors_header import (FLOAT_CODES, SafetensorsHeader, float_values,
                                              read_safetensors_header)

#: one tensor's elements by key (None when absent): detection looks at weights, not just shapes, without torch
Probe = Callable[[str], "Sequence[float] | None"]

_UNET = "model.diffusion_model."
_DTYPE_NAMES = {"F16": "fp16", "BF16": "bf16", "F32": "fp32", "F64": "fp64", "F8_E4M3": "fp8", "F8_E5M2": "fp8",
                "float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64",
                "float8_e4m3fn": "fp8", "float8_e5m2": "fp8"}
_V_NAME = re.compile(r"(^|[^0-9])768-v|v2-1_768|v2_1_768|v-?pred|v_pred", re.IGNORECASE)


class NotAModelError(ModelLoadError):
    """The file is readable but is not a Stable Diffusion base model (a LoRA, a VAE, an embedding, …)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the model picker shows for one base model, and what loading needs to know."""

    path: Path
    family: str  # sd1 | sd2 | sd2-v | sdxl
    prediction: str  # epsilon | v_prediction
    precision: str  # fp16 | bf16 | fp32 | fp8 | mixed
    size_bytes: int
    layout: str  # single-file (original CompVis/SGM keys) | diffusers (a model folder)
    # override | family | metadata | marker | file name | weights | scheduler config | default
    prediction_source: str = "default"
    notes: tuple[str, ...] = ()
    has_ema: bool = False  # the file holds an EMA copy of the UNet (`model_ema.*`)
    ema: str = "none"  # which UNet weights load: none (the file has one copy) | ema | non-ema


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class ModelScan:
    models: list[ModelInfo] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def classify(shapes: Mapping[str, tuple[int, ...]], *, name: str = "the file") -> str:
    """The family (`sd1`, `sd2`, `sdxl`; v-prediction is decided separately) of an original-layout state dict."""
    keys = list(shapes)
    _refuse_non_models(keys, shapes, name)
    family = _family(keys, shapes, name)
    _refuse_other_inputs(shapes, family, name)
    return family


def _family(keys: list[str], shapes: Mapping[str, tuple[int, ...]], name: str) -> str:
    # the refiner has SDXL's label_emb too, so it is told apart first: OpenCLIP-G as its only text encoder
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys) and \
            not any(k.startswith("conditioner.embedders.1.") for k in keys):
        raise NotAModelError(f"{name} is an SDXL refiner, which cannot be used as a base for LoRA training",
                             hint="choose an SDXL base checkpoint (the refiner only polishes its images)")
    if any(k.startswith("conditioner.embedders.1.model.") for k in keys) or f"{_UNET}label_emb.0.0.weight" in shapes:
        return "sdxl"
    context = next((int(shape[1]) for key, shape in shapes.items() if key.startswith(_UNET)
                    and key.endswith("attn2.to_k.weight") and len(shape) == 2), None)
    linear = next((len(shape) == 2 for key, shape in shapes.items()
                   if key.startswith(_UNET) and key.endswith(".proj_in.weight")), None)
    if context == 768 and linear is not True:
        return "sd1"
    if context == 1024 and linear is not False:
        return "sd2"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return "sd1"
    if linear is not None:
        return "sd2" if linear else "sd1"
    raise NotAModelError(f"{name}: cannot tell which Stable Diffusion version this is "
                         f"(cross-attention width {context})",
                         hint="choose the family by hand in the model settings")


def _refuse_other_inputs(shapes: Mapping[str, tuple[int, ...]], family: str, name: str) -> None:
    """Inpainting (9 input channels) and instruct-pix2pix (8) UNets need extra inputs built for every step;
    this trainer feeds 4-channel latents only, so they are refused here, before loading."""
    conv_in = shapes.get(f"{_UNET}input_blocks.0.0.weight")
    channels = int(conv_in[1]) if conv_in is not None and len(conv_in) == 4 else 4
    label = _LABELS.get(family, family)
    if channels == 9:
        raise NotAModelError(
            f"{name} is an {label} inpainting model (9-channel UNet input: latents, mask and masked image); "
            "training LoRAs on inpainting models is not supported yet",
            hint=f"train on the {label} base model it was made from; LoRAs trained on the base also work "
                 "with its inpainting model")
    if channels != 4:
        what = "an instruct-pix2pix (image editing) model" if channels == 8 else "not a text-to-image model"
        raise NotAModelError(f"{name} is {what}: its UNet takes {channels} input channels, not 4; "
                             "only text-to-image base models can be trained",
                             hint=f"choose a {label} text-to-image checkpoint")


def _other_architecture(keys: list[str]) -> str:
    bare = [k.removeprefix(_UNET) for k in keys]
    if any(k.startswith("joint_blocks.") for k in bare):
        # SD 3.5 added RMS q/k norms (`ln_q`) to the MMDiT blocks; SD3 Medium has none
        if any(k.startswith("joint_blocks.") and ".ln_q." in k for k in bare):
            large = any(k.startswith("joint_blocks.37.") for k in bare)
            return "an SD 3.5 Large checkpoint" if large else "an SD 3.5 checkpoint"
        return "an SD3 checkpoint"
    if any(k.startswith("double_blocks.") for k in bare) and any(k.startswith("single_blocks.") for k in bare):
        return "a Flux checkpoint"
    return ""


def _refuse_non_models(keys: list[str], shapes: Mapping[str, tuple[int, ...]], name: str) -> None:
    if not keys:
        raise NotAModelError(f"{name} holds no tensors", hint="choose a Stable Diffusion checkpoint")
    lora_markers = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".hada_w1_a", ".lokr_w1", ".lora.down.",
                    "lora_linear_layer.")
    if any(is_kohya_name(k) or any(m in k for m in lora_markers) for k in keys):
        raise NotAModelError(f"{name} is a LoRA, not a base model",
                             hint="choose a full checkpoint as the base model; add LoRAs in the Mixer")
    if len(keys) <= 4 and any(k in ("emb_params", "clip_l", "clip_g") or k.startswith("string_to_param")
                              for k in keys):
        raise NotAModelError(f"{name} is a textual-inversion embedding, not a base model",
                             hint="choose a full checkpoint as the base model")
    other = _other_architecture(keys)  # after the LoRA check: a Flux LoRA may use the bare block names too
    if other:
        raise NotAModelError(f"{name} is {other}, which is not supported yet (LoRA Studio trains SD 1.x, SD 2.x "
                             "and SDXL)", hint="choose an SD 1.x, SD 2.x or SDXL checkpoint")
    if not any(k.startswith(_UNET) for k in keys):
        if any(k.startswith(("encoder.", "decoder.", "first_stage_model.")) for k in keys) and \
                any(".mid." in k or "quant_conv" in k for k in keys):
            raise NotAModelError(f"{name} is a VAE on its own, not a full model",
                                 hint="choose a full checkpoint as the base model")
        if any(k.startswith(("down_blocks.", "up_blocks.", "mid_block.")) for k in keys):
            raise NotAModelError(f"{name} holds only a diffusers-format UNet, not a whole model",
                                 hint="choose the diffusers model folder (with model_index.json) instead")
        raise NotAModelError(f"{name} is not a Stable Diffusion checkpoint (no UNet weights found)",
                             hint="choose a SD 1.x, SD 2.x or SDXL .safetensors/.ckpt checkpoint")
    parts = {"VAE": ("first_stage_model.", "vae."), "text encoder": ("cond_stage_model.", "conditioner.")}
    missing = [part for part, prefixes in parts.items() if not any(k.startswith(prefixes) for k in keys)]
    if missing:
        raise NotAModelError(f"{name} has a UNet but no {' or '.join(missing)} weights; training needs a whole "
                             "checkpoint", hint="choose a full checkpoint (UNet, VAE and text encoder in one file)")


#: the tensor ComfyUI looks at (`supported_models.SD20.model_type`): the first transformer block's norm1 bias
#: in the last output block
V_PROBE_KEY = f"{_UNET}output_blocks.11.1.transformer_blocks.0.norm1.bias"
V_PROBE_STD = 0.09


def prediction_from_weights(probe: Probe | None) -> tuple[str, str] | None:
    """ComfyUI's heuristic for an SD 2.x UNet: `V_PROBE_KEY`'s spread is above 0.09 in 768-v models. One small
    tensor read, where AUTOMATIC1111's test needs the whole UNet built; a statistic, not a proof, so metadata,
    a marker and the file name go first and the user can override it."""
    if probe is None:
        return None
    values = probe(V_PROBE_KEY)
    if values is None or len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if not math.isfinite(std):  # NaN/Inf: a damaged tensor says nothing
        return None
    return ("v_prediction" if std > V_PROBE_STD else "epsilon"), "weights"


def prediction_from(metadata: Mapping[str, str], keys: Iterable[str], path: Path,
                    probe: Probe | None = None, *, family: str = "") -> tuple[str, str] | None:
    """(`epsilon`|`v_prediction`, source) when the file says which, else None; the weights are asked only
    for SD 2.x (`family` = `sd2`), where 512-epsilon and 768-v share every shape."""
    # metadata: SAI model-spec, our own `studio.family`, sd-scripts' `ss_v_parameterization`
    spec = metadata.get("modelspec.prediction_type", "").strip().lower()
    if spec == "epsilon":
        return "epsilon", "metadata"
    if (spec in ("v", "v_prediction", "v-prediction", "v_pred")
            or metadata.get("modelspec.architecture", "").endswith("768-v")
            or metadata.get("studio.family") == "sd2-v"
            or metadata.get("ss_v_parameterization", "").lower() == "true"):
        return "v_prediction", "metadata"
    if "v_pred" in keys:
        return "v_prediction", "marker"
    if _V_NAME.search(path.stem):
        return "v_prediction", "file name"
    if family == "sd2":
        return prediction_from_weights(probe)
    return None


def _precision(dtypes: Mapping[str, int]) -> str:
    """The dtype holding most of the floating-point bytes (a few fp32 norms in an fp16 file do not count)."""
    floats = {_DTYPE_NAMES[d]: n for d, n in dtypes.items() if d in _DTYPE_NAMES}
    if not floats:
        return "unknown"
    total = sum(floats.values())
    best, count = max(floats.items(), key=lambda kv: kv[1])
    return best if count >= 0.9 * total else "mixed"


def _finish(path: Path, base: str, found: tuple[str, str] | None, *, family: str, override: str,
            precision: str, size: int, layout: str, has_ema: bool = False, ema: str = "auto") -> ModelInfo:
    """Combine what the weights say (`base`, `found`) with the user's overrides; the user wins where the
    weights cannot tell (SD 2.x 512 vs 768-v), and is stopped where they contradict the weights."""
    if family != "auto" and _LABELS[family] != _LABELS[base]:
        raise ModelLoadError(f"{path.name} is a {_LABELS[base]} model, but the family was set to {_LABELS[family]}",
                             hint=f"set the model family to auto or {base}")
    if override != "auto":
        pred, source = override, "override"
    elif family in ("sd2", "sd2-v"):
        pred, source = ("v_prediction" if family == "sd2-v" else "epsilon"), "family"
    elif found is not None:
        pred, source = found
    else:
        pred, source = "epsilon", "default"
    if family == "auto":
        family = "sd2-v" if base == "sd2" and pred == "v_prediction" else base
    used = ema_weights.choose(path.name, has_ema, ema)
    notes = (ema_weights.note(used),) if has_ema else ()
    return ModelInfo(path=path, family=family, prediction=pred, precision=precision, size_bytes=size,
                     layout=layout, prediction_source=source, notes=notes, has_ema=has_ema, ema=used)


_LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sd2-v": "SD 2.x", "sdxl": "SDXL"}


def info_from_state(path: Path, shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, int],
                    metadata: Mapping[str, str], *, family: str = "auto", prediction: str = "auto",
                    ema: str = "auto", size: int | None = None, probe: Probe | None = None) -> ModelInfo:
    """What a single-file checkpoint is: the rule every caller goes through, so that the picker, the
    pre-start check and the loader agree."""
    base = classify(shapes, name=path.name)
    has_ema = ema_weights.has_ema(shapes)
    # the statistic is of the weights that will be trained: with `ema = use`, the EMA copy
    if probe is not None and has_ema and ema == "use":
        plain = probe
        probe = lambda key: plain(ema_weights.ema_key(key))  # noqa: E731
    found = prediction_from(metadata, shapes.keys(), path, probe, family=base)
    return _finish(path, base, found, family=family, override=prediction,
                   precision=_precision(dtypes), size=size if size is not None else path.stat().st_size,
                   layout="single-file", has_ema=has_ema, ema=ema)


def detect_model(path: str | Path, *, family: str = "auto", prediction: str = "auto",
                 ema: str = "auto") -> ModelInfo:
    """The one check of "can this be trained on", so that files are accepted, and refused, alike everywhere;
    `family`/`prediction`/`ema` are the user's settings (`auto` = detect)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _detect_folder(path, family=family, prediction=prediction, ema=ema)
    if not path.is_file():
        raise ModelLoadError(f"base model not found: {path}")
    kind = weights_kind(path)
    if kind == "safetensors":
        header = read_safetensors_header(path)
        tensors, metadata, probe = header.tensors, header.metadata, _safetensors_probe(path, header)
    elif kind == "pickle":  # read from the pickle's opcodes, never unpickled: torch-free (`ckpt_scan`)
        scan = scan_ckpt(path)
        tensors, metadata, probe = scan.tensors, {}, scan.values
    else:
        raise NotAModelError(f"{path.name} is not a model file (neither safetensors nor a PyTorch "
                             "checkpoint)", hint="choose a .safetensors or .ckpt checkpoint, or a diffusers "
                                                 "model folder")
    return info_from_state(path, {k: t.shape for k, t in tensors.items()}, bytes_by_dtype(tensors.values()),
                           metadata, family=family, prediction=prediction, ema=ema, probe=probe)


def bytes_by_dtype(tensors: Iterable[Any]) -> Counter[str]:
    """Header entries and torch tensors alike (`torch.float16` counts as `float16`)."""
    totals: Counter[str] = Counter()
    for t in tensors:
        totals[str(t.dtype).removeprefix("torch.")] += t.nbytes
    return totals


def _safetensors_probe(path: Path, header: SafetensorsHeader) -> Probe:
    """Reads one small tensor's elements from a (validated) safetensors file on demand, with no library:
    detection stays a header read and torch-free."""
    def probe(key: str) -> list[float] | None:
        entry = header.tensors.get(key)
        if entry is None or entry.dtype not in FLOAT_CODES or entry.nbytes > 1 << 20:
            return None
        try:
            with open(path, "rb") as fh:
                fh.seek(8 + header.header_bytes + entry.start)
                raw = fh.read(entry.nbytes)
        except OSError:
            return None
        return float_values(entry.dtype, raw)
    return probe


def _detect_folder(folder: Path, *, family: str, prediction: str, ema: str = "auto") -> ModelInfo:
    def read(rel: str) -> dict:
        try:
            value = json.loads((folder / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise NotAModelError(f"{folder.name}: not a diffusers model folder (no readable {rel})",
                                 hint="choose the folder that contains model_index.json, or a checkpoint file")
        return value if isinstance(value, dict) else {}

    index = read("model_index.json")
    unet = read("unet/config.json")
    scheduler = read("scheduler/scheduler_config.json")
    if index.get("text_encoder_2", [None])[0] is not None or unet.get("addition_embed_type") == "text_time":
        base = "sdxl"
    elif unet.get("use_linear_projection") or unet.get("cross_attention_dim") == 1024:
        base = "sd2"
    else:
        base = "sd1"
    sched_pred = scheduler.get("prediction_type")
    found = (sched_pred, "scheduler config") if sched_pred in ("v_prediction", "epsilon") else None
    dtypes = bytes_by_dtype(e for weights in sorted((folder / "unet").glob("*.safetensors"))
                             for e in read_safetensors_header(weights).tensors.values())
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return _finish(folder, base, found, family=family, override=prediction,
                   precision=_precision(dtypes), size=size, layout="diffusers",
                   ema=ema)  # a diffusers folder holds one UNet: `ema = use` is refused, as the loader does


def scan_model_folders(folders: Iterable[str | Path]) -> ModelScan:
    """Every base model under `folders`; the files passed over are in `skipped` with the reason, so the
    picker can say why one the user expected is missing."""
    scan = ModelScan()
    seen: set[Path] = set()
    for root in folders:
        root = Path(root).expanduser()
        if not root.is_dir():
            scan.skipped.append(SkippedFile(root, "folder not found"))
            continue
        candidates = sorted(root.rglob("*"))
        diffusers_roots = [p.parent for p in candidates if p.name == "model_index.json"]
        for path in candidates:
            resolved = path.resolve()
            if resolved in seen:
                continue
            model_folder = path.is_dir() and path in diffusers_roots
            model_file = (path.is_file() and path.suffix.lower() in BASE_MODEL_SUFFIXES
                          and not any(r in path.parents for r in diffusers_roots))  # not a diffusers part
            if not (model_folder or model_file):
                continue
            seen.add(resolved)
            try:
                scan.models.append(detect_model(path))
            except StudioError as exc:
                scan.skipped.append(SkippedFile(path, str(exc)))
            except (OSError, ValueError) as exc:  # unreadable in some way the detectors did not foresee
                scan.skipped.append(SkippedFile(path, f"cannot read: {exc}"))
    scan.models.sort(key=lambda m: (m.family, m.path.name.lower()))
    return scan
