"""Issue 16 D: the plain-LoRA copy of a DoRA file, loaded by diffusers' own `load_lora_weights`, changes each
layer by the DoRA delta (`module_delta`, magnitude included) within the SVD error the copy reports."""

from __future__ import annotations

import pytest
import torch

from studio.errors import ConfigError, LoraFormatError
from studio.formats.compat_report import read_sidecar
from studio.formats.kohya import save_lora_file
from studio.formats.reader import read_lora
from studio.mix.delta import module_delta
from studio.mix.plain import base_weights_from_model, write_plain_copy
from tests.diffusers_helpers import load_lora_collecting_messages, sd_pipeline
from tests.lora_maker import lycoris_shapes, lycoris_tensors, random_lora, target_modules

RANK = 6


def _dora_file(pipe, path):
    lf = random_lora(pipe, "sd1", rank=4, conv=True, seed=5)
    gen = torch.Generator().manual_seed(9)
    for m in lf.modules.values():
        tail = (1,) * (m.down.dim() - 2)
        m.dora_scale = torch.rand((m.up.shape[0], 1) + tail, generator=gen) + 0.5
    save_lora_file(lf, path, dtype="fp32")
    return read_lora(path)


def _layers(pipe):
    from studio.formats.names import kohya_name_for

    return {kohya_name_for(c, p, "sd1"): mod for c, p, mod in target_modules(pipe, te=True, conv=True)}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_diffusers_renders_the_plain_copy_of_a_dora_file_within_the_reported_error(tiny_sd1, tmp_path):
    pipe = sd_pipeline(tiny_sd1)
    layers = _layers(pipe)
    src = tmp_path / "dora.safetensors"
    lf = _dora_file(pipe, src)
    copy = write_plain_copy(lf, tmp_path / "dora-plain.safetensors", RANK, source=src,
                            base_weight=base_weights_from_model(tiny_sd1, lf, src.name), dtype="fp32")
    assert 0.01 < copy.merge.overall_error < 0.9  # a real truncation, so the bound below is tested
    plain = read_lora(copy.path)
    assert plain.ranks() and max(plain.ranks()) <= RANK
    assert all(m.algo == "lora" and m.dora_scale is None for m in plain.modules.values())
    assert copy.report.plain_copy_advised is False and read_sidecar(copy.path) == copy.report
    assert float(plain.metadata["ls_plain_copy_error"]) == pytest.approx(copy.merge.overall_error, rel=1e-5)

    before = {name: mod.weight.detach().clone().float() for name, mod in layers.items()}
    messages = load_lora_collecting_messages(pipe, copy.path)
    assert not messages, messages  # every key placed, nothing dropped
    pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=1.0)
    reports = {r.name: r for r in copy.merge.reports}
    lost_sq = total_sq = 0.0
    for name, mod in layers.items():
        w0 = before[name]
        dora = module_delta(lf.modules[name], weight=w0)
        plain_part = lf.modules[name].delta_weight(tuple(w0.shape))
        assert (dora - plain_part).norm() > 0.1 * dora.norm(), name  # the magnitude matters here
        got = mod.weight.detach().float() - w0
        rel = float((got - dora).norm() / dora.norm())
        assert rel == pytest.approx(reports[name].rel_error, abs=2e-4), name
        lost_sq += float((got - dora).norm()) ** 2
        total_sq += float(dora.norm()) ** 2
    assert (lost_sq / total_sq) ** 0.5 == pytest.approx(copy.merge.overall_error, abs=2e-4)


def test_a_plain_copy_at_a_sufficient_rank_is_exact_for_loha(tmp_path):
    from studio.models.tiny import build_tiny_pipeline
    from safetensors.torch import save_file

    pipe = build_tiny_pipeline("sd1")
    src = tmp_path / "loha.safetensors"
    save_file(lycoris_tensors(lycoris_shapes(pipe, "sd1", conv=False), "loha", rank=2), str(src))
    lf = read_lora(src)
    copy = write_plain_copy(lf, tmp_path / "loha-plain.safetensors", 4, source=src, dtype="fp32")  # LoHa rank ≤ r²
    assert copy.merge.overall_error < 1e-5
    out = read_lora(copy.path)
    for name, m in lf.modules.items():
        want = m.delta_weight()
        got = out.modules[name].delta_weight().reshape(want.shape)
        assert torch.allclose(got, want, atol=1e-5), name
    assert [v.status for v in copy.report.verdicts] == ["ok"] * 5


def test_a_dora_copy_needs_the_base_model_and_never_overwrites_the_source(tiny_sd1, tmp_path):
    pipe = sd_pipeline(tiny_sd1)
    src = tmp_path / "d.safetensors"
    lf = _dora_file(pipe, src)
    with pytest.raises(LoraFormatError, match="base model"):
        write_plain_copy(lf, tmp_path / "out.safetensors", 8, source=src)
    with pytest.raises(ConfigError, match="the file being copied"):
        write_plain_copy(lf, src, 8, source=src)
    assert not (tmp_path / "out.safetensors").exists()
