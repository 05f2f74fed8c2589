"""LoRA files that are wrong in the ways downloaded LoRAs are: NaN/Inf weights, missing alphas, factors whose
shapes do not fit, keys for another model (or no LoRA at all), and metadata that is hostile.

`cases()` returns `(case_id, tensors, metadata, expect)`; expect is "error" (read_lora must raise a
LoraFormatError/StudioError), "ok" (must load), "nonfinite" (refused by `read_lora`, loaded by
`read_lora(allow_nonfinite=True)`: the documented handling), or "any".
"""

from __future__ import annotations

import json

import torch

# real SD 1.5 module names (kohya layout), with the tiny model's widths
ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
PROJ = "lora_unet_mid_block_attentions_0_proj_in"
CONV = "lora_unet_down_blocks_0_resnets_0_conv1"
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
PEFT = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def good_modules(seed: int = 0) -> dict[str, torch.Tensor]:
    g = _g(seed)
    return {
        f"{ATTN}.lora_down.weight": torch.randn(4, 32, generator=g), f"{ATTN}.lora_up.weight": torch.randn(32, 4, generator=g),
        f"{ATTN}.alpha": torch.tensor(2.0),
        f"{PROJ}.lora_down.weight": torch.randn(4, 64, generator=g), f"{PROJ}.lora_up.weight": torch.randn(64, 4, generator=g),
        f"{PROJ}.alpha": torch.tensor(4.0),
        f"{CONV}.lora_down.weight": torch.randn(4, 32, 3, 3, generator=g),
        f"{CONV}.lora_up.weight": torch.randn(32, 4, 1, 1, generator=g), f"{CONV}.alpha": torch.tensor(1.0),
        f"{TE}.lora_down.weight": torch.randn(4, 32, generator=g), f"{TE}.lora_up.weight": torch.randn(32, 4, generator=g),
        f"{TE}.alpha": torch.tensor(4.0),
    }


def _peft(alpha_meta: str | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    g = _g(1)
    tensors = {f"{PEFT}.lora_A.weight": torch.randn(4, 32, generator=g),
               f"{PEFT}.lora_B.weight": torch.randn(32, 4, generator=g)}
    return tensors, ({} if alpha_meta is None else {"lora_adapter_metadata": alpha_meta})


def cases() -> list[tuple[str, dict[str, torch.Tensor], dict[str, str], str]]:
    out: list[tuple[str, dict[str, torch.Tensor], dict[str, str], str]] = []

    def add(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None,
            expect: str = "error") -> None:
        out.append((f"{len(out):03d}-{name}", tensors, meta or {}, expect))

    good = good_modules()
    add("valid", good, {"ss_network_module": "networks.lora"}, "ok")

    # ---- NaN / Inf --------------------------------------------------------------------------------------
    for bad in (float("nan"), float("inf"), float("-inf")):
        for key in (f"{ATTN}.lora_down.weight", f"{ATTN}.lora_up.weight", f"{CONV}.lora_down.weight",
                    f"{TE}.lora_up.weight"):
            t = good[key].clone()
            t.view(-1)[3] = bad
            add(f"{bad}-in-{key.rsplit('.', 2)[-2]}-{key[:12]}", {**good, key: t}, expect="nonfinite")
        add(f"{bad}-alpha", {**good, f"{PROJ}.alpha": torch.tensor(bad)}, expect="nonfinite")
        add(f"{bad}-everywhere", {k: torch.full_like(v, bad) for k, v in good.items()}, expect="nonfinite")
    huge = good[f"{ATTN}.lora_up.weight"].clone()
    huge[0, 0] = 1e30
    add("fp32-huge-but-finite", {**good, f"{ATTN}.lora_up.weight": huge}, expect="ok")
    add("fp16-weights", {k: v.half() for k, v in good.items()}, expect="ok")
    add("bf16-weights", {k: v.bfloat16() for k, v in good.items()}, expect="ok")

    # ---- missing alphas: documented, kohya's rule: no alpha means scale 1 ------------------------------
    add("no-alphas", {k: v for k, v in good.items() if not k.endswith(".alpha")}, expect="ok")
    add("some-alphas", {k: v for k, v in good.items() if not k.startswith(ATTN + ".alpha")}, expect="ok")
    add("alpha-only-module", {**good, "lora_unet_mid_block_attentions_0_proj_out.alpha": torch.tensor(1.0)},
        expect="ok")
    tensors, meta = _peft(None)
    add("peft-without-metadata", tensors, meta, "ok")
    tensors, meta = _peft(json.dumps({"unet.lora_alpha": 8, "unet.r": 4}))
    add("peft-with-alpha", tensors, meta, "ok")

    # ---- shapes that do not fit -----------------------------------------------------------------------------
    g = _g(2)
    for name, change in (
            ("rank-mismatch", {f"{ATTN}.lora_up.weight": torch.randn(32, 8, generator=g)}),
            ("down-3d", {f"{ATTN}.lora_down.weight": torch.randn(4, 32, 2, generator=g)}),
            ("down-1d", {f"{ATTN}.lora_down.weight": torch.randn(32, generator=g)}),
            ("linear-down-conv-up", {f"{ATTN}.lora_up.weight": torch.randn(32, 4, 1, 1, generator=g)}),
            ("conv-up-3x3", {f"{CONV}.lora_up.weight": torch.randn(32, 4, 3, 3, generator=g)}),
            ("alpha-vector", {f"{ATTN}.alpha": torch.ones(2)}),
            ("alpha-matrix", {f"{ATTN}.alpha": torch.ones(4, 4)}),
            ("mid-wrong", {f"{CONV}.lora_mid.weight": torch.randn(3, 3, 3, 3, generator=g)}),
            
            ("scalar-down", {f"{ATTN}.lora_down.weight": torch.tensor(1.0)}),
    ):
        add(name, {**good, **change})
    add("rank-zero", {**good, f"{ATTN}.lora_down.weight": torch.randn(0, 32), f"{ATTN}.lora_up.weight": torch.randn(32, 0)},
        expect="any")  # an empty update: harmless
    add("down-only", {k: v for k, v in good.items() if k != f"{ATTN}.lora_up.weight"})
    add("up-only", {k: v for k, v in good.items() if k != f"{ATTN}.lora_down.weight"})
    loha = {f"{ATTN}.hada_w1_a": torch.randn(32, 4), f"{ATTN}.hada_w1_b": torch.randn(4, 32),
            f"{ATTN}.hada_w2_a": torch.randn(32, 4)}
    add("loha-incomplete", loha)
    add("loha-wrong-shapes", {**loha, f"{ATTN}.hada_w2_b": torch.randn(5, 7)})
    add("lokr-incomplete", {f"{ATTN}.lokr_w1": torch.randn(4, 4)})
    add("mixed-algorithms", {f"{ATTN}.lora_down.weight": torch.randn(4, 32), f"{ATTN}.hada_w1_a": torch.randn(32, 4)})
    tensors, meta = _peft(None)
    add("dora-magnitude-wrong", {**tensors, f"{PEFT}.lora_magnitude_vector": torch.randn(7)}, meta)

    # ---- keys for another model, or not a LoRA at all ------------------------------------------------------
    g = _g(3)
    xl = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    add("sdxl-lora", {f"{xl}.lora_down.weight": torch.randn(4, 640, generator=g),
                      f"{xl}.lora_up.weight": torch.randn(640, 4, generator=g), f"{xl}.alpha": torch.tensor(4.0),
                      "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.randn(4, 1280),
                      "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.randn(1280, 4)},
        {"ss_base_model_version": "sdxl_base_v1-0"}, "any")
    add("full-checkpoint", {"model.diffusion_model.input_blocks.0.0.weight": torch.randn(8, 4, 3, 3),
                            "first_stage_model.encoder.conv_in.weight": torch.randn(8, 3, 3, 3)})
    add("llm-lora", {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(4, 64),
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(64, 4)}, expect="any")
    add("textual-inversion", {"emb_params": torch.randn(2, 768)})
    add("a1111-embedding", {"string_to_param.*": torch.randn(2, 768)})
    add("random-keys", {"foo": torch.ones(1), "bar.baz": torch.ones(2), "": torch.ones(1)})
    add("no-tensors", {})
    add("garbage-module-names", {"lora_unet_nonexistent_block_99_to_q.lora_down.weight": torch.randn(4, 32),
                                 "lora_unet_nonexistent_block_99_to_q.lora_up.weight": torch.randn(32, 4)}, expect="any")
    add("same-module-two-layouts", {**good, f"unet.{'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q'}"
                                            ".lora_A.weight": torch.randn(4, 32),
                                    "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight":
                                        torch.randn(32, 4)})
    add("bundled-embedding", {**good, "bundle_emb.sks.string_to_param.*": torch.randn(1, 768)}, expect="ok")
    add("unsupported-ia3", {f"{ATTN}.weight": torch.randn(32), "lora_unet_x.on_input": torch.ones(1)}, expect="any")

    # ---- hostile metadata -------------------------------------------------------------------------------
    depth = 100_000
    for name, value in (
            ("adapter-meta-deep", "[" * depth + "]" * depth),
            ("adapter-meta-huge-int", '{"unet.lora_alpha": ' + "9" * 5000 + "}"),
            ("adapter-meta-not-json", "{unet.lora_alpha: 8"),
            ("adapter-meta-alpha-string", json.dumps({"unet.lora_alpha": "eight"})),
            ("adapter-meta-alpha-list", json.dumps({"unet.lora_alpha": [8]})),
            ("adapter-meta-alpha-inf", '{"unet.lora_alpha": 1e999}'),
            ("adapter-meta-alpha-nan", '{"unet.lora_alpha": NaN}'),
            ("adapter-meta-pattern-bad-regex", json.dumps({"unet.alpha_pattern": {"(": 4}})),
            ("adapter-meta-pattern-redos", json.dumps({"unet.alpha_pattern": {"(.*.*.*.*.*.*.*.*)*xyz": 4}})),
            ("adapter-meta-pattern-redos2", json.dumps({"unet.alpha_pattern": {"(a|aa|.)*(b|.)*(c|.)*$z": 4}})),
            ("adapter-meta-pattern-value-string", json.dumps({"unet.alpha_pattern": {"to_q": "four"}})),
            ("adapter-meta-pattern-not-dict", json.dumps({"unet.alpha_pattern": ["to_q"]})),
            ("adapter-meta-not-object", "5"),
            ("adapter-meta-huge", json.dumps({f"unet.k{i}": i for i in range(100_000)}))):
        tensors, meta = _peft(value)
        add(name, tensors, meta, "any")
    for name, meta in (
            ("ss-junk-values", {"ss_network_dim": "abc", "ss_network_alpha": "NaN", "ss_steps": "-1",
                                "ss_resolution": "((((", "ss_base_model_version": "sd_v99"}),
            ("ss-tag-frequency-deep", {"ss_tag_frequency": "[" * depth + "]" * depth}),
            ("ss-tag-frequency-huge-int", {"ss_tag_frequency": '{"a": {"b": ' + "9" * 5000 + "}}"}),
            ("ss-tag-frequency-wrong-shape", {"ss_tag_frequency": json.dumps({"a": ["x", 1], "b": 5})}),
            ("ss-tag-frequency-negative", {"ss_tag_frequency": json.dumps({"a": {"x": -5, "y": 1e308, "z": "q"}})}),
            ("mix-sources-junk", {"ls_mix_sources": "[" * depth + "]" * depth}),
            ("mix-sources-wrong", {"ls_mix_sources": json.dumps([{"name": 5}, "x", None])}),
            ("mix-sources-bad-numbers", {"ls_mix_sources": json.dumps([
                {"name": "a", "strength": "strong"}, {"name": "b", "blocks": [1, 2]}, {"name": "c", "unet": "q"},
                {"name": "d", "blocks": {"IN01": "x"}}, {"name": "e", "te": [1]}])}),
            ("ss-tag-frequency-nan-inf", {"ss_tag_frequency": '{"a": {"x": NaN, "y": Infinity, "z": -Infinity}}'}),
            ("metadata-huge-value", {"ss_dataset_dirs": "x" * 5_000_000}),
            ("modelspec-junk", {"modelspec.architecture": "\u0000" * 100, "modelspec.title": "\ud7ff" * 10})):
        add(name, dict(good), meta, "ok")
    return out
