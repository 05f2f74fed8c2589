"""Random, non-zero LoRAs for the tiny models, made on the spot (no trainer run needed).

`random_lora` builds a `LoraFile` whose modules cover the layers sd-scripts targets (attention, proj,
ff, and optionally the 3×3 convs of LoCon and the CLIP attention/MLP); `write_*` save it in the layouts
other tools write, so the reader is tested against each of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from studio.formats.kohya import save_lora_file
from studio.formats.lora_file import LoraFile, LoraModule
from studio.formats.names import kohya_name_for

UNET_LEAVES = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
TE_LEAVES = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def target_modules(pipe, *, te: bool = True, conv: bool = False) -> list[tuple[str, str, torch.nn.Module]]:
    """(component, module path, module) of every layer a typical LoRA/LoCon adapts."""
    out = []
    for path, mod in pipe.unet.named_modules():
        is_attn = ".attentions." in path or path.startswith("mid_block.attentions")
        if is_attn and path.endswith(UNET_LEAVES) and isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            out.append(("unet", path, mod))
        elif conv and isinstance(mod, torch.nn.Conv2d) and path.endswith(("conv1", "conv2")) and ".resnets." in path:
            out.append(("unet", path, mod))
    if te:
        encoders = [("te", pipe.text_encoder)]
        if getattr(pipe, "text_encoder_2", None) is not None:
            encoders = [("te1", pipe.text_encoder), ("te2", pipe.text_encoder_2)]
        for component, enc in encoders:
            for path, mod in enc.named_modules():
                if path.endswith(TE_LEAVES) and isinstance(mod, torch.nn.Linear):
                    out.append((component, path, mod))
    return out


def random_lora(pipe, family: str, *, rank: int = 4, alpha: float | None = 2.0, seed: int = 0, te: bool = True,
                conv: bool = False, scale: float = 0.3, metadata: dict[str, str] | None = None) -> LoraFile:
    gen = torch.Generator().manual_seed(seed)
    lf = LoraFile(family=family, metadata=dict(metadata or {}))
    for component, path, mod in target_modules(pipe, te=te, conv=conv):
        w = mod.weight
        if w.dim() == 4:
            down = torch.randn(rank, w.shape[1], w.shape[2], w.shape[3], generator=gen) * scale
            up = torch.randn(w.shape[0], rank, 1, 1, generator=gen) * scale
        else:
            down = torch.randn(rank, w.shape[1], generator=gen) * scale
            up = torch.randn(w.shape[0], rank, generator=gen) * scale
        name = kohya_name_for(component, path, family)
        lf.modules[name] = LoraModule(name=name, down=down, up=up, alpha=alpha)
    return lf


def lora_metadata(family: str, name: str, tags: dict[str, int] | None = None) -> dict[str, str]:
    version = {"sd1": "sd_v1", "sd2": "sd_v2", "sd2-v": "sd_v2_v", "sdxl": "sdxl_base_v1-0"}[family]
    return {"ss_output_name": name, "ss_base_model_version": version, "ss_network_module": "networks.lora",
            "ss_resolution": "(64, 64)", "ss_steps": "40", "ss_epoch": "2", "ss_sd_model_name": "tiny",
            "ss_tag_frequency": json.dumps({"1_thing": tags or {"red": 5, "thing": 9, "photo": 2}}),
            "modelspec.title": name}


def write_kohya(lf: LoraFile, path: Path) -> Path:
    return save_lora_file(lf, path, dtype="fp32")


_PEFT_PREFIX = {"unet": "unet", "te": "text_encoder", "te1": "text_encoder", "te2": "text_encoder_2"}


def write_peft(pipe, lf: LoraFile, path: Path, *, base_model_prefix: bool = False) -> Path:
    """diffusers' own layout (`unet.<path>.lora_A.weight`), alpha in `lora_adapter_metadata` as diffusers writes."""
    tensors: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    for component, path_, _ in target_modules(pipe, te=True, conv=True):
        name = kohya_name_for(component, path_, lf.family)
        m = lf.modules.get(name)
        if m is None:
            continue
        prefix = _PEFT_PREFIX[component] + "." + ("base_model.model." if base_model_prefix else "")
        tensors[f"{prefix}{path_}.lora_A.weight"] = m.down.contiguous()
        tensors[f"{prefix}{path_}.lora_B.weight"] = m.up.contiguous()
        alphas[_PEFT_PREFIX[component]] = m.alpha if m.alpha is not None else m.rank
    meta = {"format": "pt"}
    ranks = {m.rank for m in lf.modules.values()}
    adapter = {}
    for prefix, alpha in alphas.items():
        adapter[f"{prefix}.lora_alpha"] = alpha
        adapter[f"{prefix}.r"] = max(ranks)
    meta["lora_adapter_metadata"] = json.dumps(adapter)
    save_file(tensors, str(path), metadata=meta)
    return path


def write_old_diffusers(pipe, lf: LoraFile, path: Path, style: str) -> Path:
    """Pre-peft diffusers layouts: `processor` (attn procs: to_q_lora), `compat` (`.lora.down`, `lora_linear_layer`)."""
    tensors: dict[str, torch.Tensor] = {}
    for component, path_, _ in target_modules(pipe, te=True):
        m = lf.modules.get(kohya_name_for(component, path_, lf.family))
        if m is None:
            continue
        prefix = _PEFT_PREFIX[component]
        if style == "processor":
            leaf = path_.rsplit(".", 1)[-1]
            if component == "unet":
                if not any(path_.endswith(x) for x in ("to_q", "to_k", "to_v", "to_out.0")):
                    continue
                base = path_.removesuffix(".0").rsplit(".", 1)[0]
                proj = "to_out" if path_.endswith("to_out.0") else leaf
                key = f"{prefix}.{base}.processor.{proj}_lora"
            else:
                if leaf not in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    continue
                proj = {"q_proj": "to_q", "k_proj": "to_k", "v_proj": "to_v", "out_proj": "to_out"}[leaf]
                key = f"{prefix}.{path_.rsplit('.', 1)[0]}.{proj}_lora"
        else:
            key = f"{prefix}.{path_}.lora" if component == "unet" else f"{prefix}.{path_}.lora_linear_layer"
        tensors[f"{key}.down.weight"] = m.down.contiguous()
        tensors[f"{key}.up.weight"] = m.up.contiguous()
    save_file(tensors, str(path))
    return path


def _factor(n: int, factor: int = -1) -> tuple[int, int]:
    """LyCORIS' `factorization(n, factor)`: (m, k) with m·k = n, m ≤ k, as square as possible (or m = factor)."""
    if factor > 0 and n % factor == 0:
        m, k = factor, n // factor
        return (m, k) if m <= k else (k, m)
    m = int(n ** 0.5)
    while n % m:
        m -= 1
    return m, n // m


def lycoris_tensors(shapes: dict[str, tuple[tuple[str, str], tuple[int, ...]]], algo: str, *, rank: int = 4,
                    alpha: float = 2.0, seed: int = 0, dora: bool = False) -> dict[str, torch.Tensor]:
    """A LoHa or LoKr state dict the way LyCORIS (`lycoris/modules/loha.py`, `lokr.py`) lays one out.

    `shapes` maps a kohya module name to ((component, module path), the base weight's shape). LyCORIS
    conventions reproduced: LoHa without Tucker stores `hada_w1_a` (out × r) and `hada_w1_b` (r × in·kh·kw),
    always 2-D, a 1×1 conv included; LoKr splits out and in with `factorization`, keeps `lokr_w1` whole and
    factorises `lokr_w2` as `lokr_w2_a` (out_k × r) @ `lokr_w2_b` (r × in_n·kh·kw) when r is small enough,
    else stores `lokr_w2` whole and, for a conv, 4-D (out_k × in_n × kh × kw). DoRA (`dora_scale`) is
    (out × 1) for a linear layer and (out × 1 × 1 × 1) for a conv (LyCORIS' `wd_on_out`).
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.1

    for name, (_, shape) in shapes.items():
        out_dim, in_dim, kernel = shape[0], shape[1], tuple(shape[2:])
        k = 1
        for d in kernel:
            k *= d
        if algo == "loha":
            for w in ("w1", "w2"):
                out[f"{name}.hada_{w}_a"] = rnd(out_dim, rank)
                out[f"{name}.hada_{w}_b"] = rnd(rank, in_dim * k)
        elif algo == "lokr":
            in_m, in_n = _factor(in_dim, 4)
            out_l, out_k = _factor(out_dim, 4)
            out[f"{name}.lokr_w1"] = rnd(out_l, in_m)
            if rank < max(out_k, in_n) / 2:
                out[f"{name}.lokr_w2_a"] = rnd(out_k, rank)
                out[f"{name}.lokr_w2_b"] = rnd(rank, in_n * k)
            else:
                out[f"{name}.lokr_w2"] = rnd(out_k, in_n, *kernel)
        else:
            raise ValueError(algo)
        out[f"{name}.alpha"] = torch.tensor(alpha)
        if dora:
            out[f"{name}.dora_scale"] = rnd(out_dim, *([1] * (len(shape) - 1))) + 1
    return out


def lycoris_metadata(family: str, algo: str) -> dict[str, str]:
    """What LyCORIS' kohya wrapper records: `ss_network_module = lycoris.kohya`, the algo in the network args."""
    meta = lora_metadata(family, f"lycoris-{algo}")
    meta["ss_network_module"] = "lycoris.kohya"
    meta["ss_network_args"] = json.dumps({"algo": algo, "conv_dim": "4", "conv_alpha": "2"})
    return meta


def lycoris_shapes(pipe, family: str, *, conv: bool = True) -> dict[str, tuple[tuple[str, str], tuple[int, ...]]]:
    """kohya name → ((component, path), weight shape) of the layers a LyCORIS network adapts on `pipe`."""
    return {kohya_name_for(c, p, family): ((c, p), tuple(m.weight.shape))
            for c, p, m in target_modules(pipe, te=True, conv=conv)}


def write_lycoris(pipe, family: str, algo: str, path: Path, *, metadata: dict[str, str] | None = None,
                  **kwargs) -> Path:
    save_file(lycoris_tensors(lycoris_shapes(pipe, family), algo, **kwargs), str(path), metadata=metadata)
    return path
