"""Issue 16 D: the per-loader compatibility report of every network type, row by row against the issue's
table, and the table's diffusers column checked against the installed diffusers itself.

The table is re-stated here (not imported from `studio.formats.loaders`), so a wrong rule there fails a
row here. Status per loader: `ok` (every key loads, result as trained), `wrong` (every key loads, result
differs), `partial` (some keys ignored), `refused` (the whole file is rejected).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from studio.formats.compat import compat_report
from studio.formats.compat_report import read_sidecar, report_from_dict, report_to_dict, sidecar_path, write_sidecar
from studio.formats.kohya import save_lora_file
from studio.formats.lora_file import LoraModule
from studio.formats.reader import read_lora
from tests.lora_maker import lycoris_shapes, lycoris_tensors, random_lora

LOADER_KEYS = ("a1111", "forge", "comfyui", "diffusers", "sd-scripts")

#         network type:      A1111      Forge  ComfyUI  diffusers  sd-scripts
TABLE = {
    "lora-unet":        ("ok",      "ok", "ok", "ok",      "ok"),
    "lora-te":          ("ok",      "ok", "ok", "ok",      "ok"),
    "locon":            ("ok",      "ok", "ok", "ok",      "ok"),
    "lora-te-fp16":     ("ok",      "ok", "ok", "ok",      "ok"),
    "locon-fp16":       ("ok",      "ok", "ok", "ok",      "ok"),
    "loha":             ("ok",      "ok", "ok", "refused", "partial"),
    "lokr":             ("ok",      "ok", "ok", "refused", "partial"),
    "dora":             ("wrong",   "ok", "ok", "partial", "partial"),
    "locon-dora":       ("wrong",   "ok", "ok", "partial", "partial"),
    "dora-fp16":        ("wrong",   "ok", "ok", "partial", "partial"),
}


def verdict(report, loader: str):
    """The report's verdict for one loader."""
    return next(v for v in report.verdicts if v.loader == loader)


@pytest.fixture(scope="module", params=["sd1", "sdxl"])
def pipe(request):
    from studio.models.tiny import build_tiny_pipeline

    return build_tiny_pipeline(request.param), request.param


def _with_dora(lf, *, axis: str = "out"):
    gen = torch.Generator().manual_seed(3)
    for m in lf.modules.values():
        assert m.up is not None and m.down is not None
        out_f, in_f = m.up.shape[0], m.down.shape[1]
        tail = (1,) * (m.down.dim() - 2)
        shape = (out_f, 1) + tail if axis == "out" else (1, in_f) + tail
        m.dora_scale = torch.rand(shape, generator=gen) + 0.5
    return lf


def make_file(kind: str, pipe_, family: str, tmp_path):
    """Write the file of one table row as users get it, and read it back the way every command does."""
    path = tmp_path / f"{kind}.safetensors"
    dtype = "fp16" if kind.endswith("fp16") else "fp32"
    base = kind.removesuffix("-fp16")
    if base in ("loha", "lokr"):
        from safetensors.torch import save_file

        save_file(lycoris_tensors(lycoris_shapes(pipe_, family), base), str(path))
    else:
        lf = random_lora(pipe_, family, te=base != "lora-unet", conv=base in ("locon", "locon-dora"))
        if base.endswith("dora"):
            _with_dora(lf)
        save_lora_file(lf, path, dtype=dtype)
    return read_lora(path), path


@pytest.mark.parametrize("kind", sorted(TABLE))
def test_each_network_type_gets_the_issue_tables_verdicts(kind, pipe, tmp_path):
    pipe_, family = pipe
    lf, _ = make_file(kind, pipe_, family, tmp_path)
    report = compat_report(lf)
    got = tuple(verdict(report, k).status for k in LOADER_KEYS)
    assert got == TABLE[kind], dict(zip(LOADER_KEYS, got))
    for v in report.verdicts:  # each verdict's parts agree with its status
        assert v.faithful == (v.status == "ok")
        assert v.loads_all_keys == (v.status in ("ok", "wrong"))
        assert (v.keys_not_loaded == 0) == v.loads_all_keys
        assert bool(v.notes) == (not v.faithful)
        assert v.total_keys == sum(len(m.tensors()) + (m.alpha is not None) for m in lf.modules.values())
    assert report.plain_copy_advised == any(s != "ok" for s in TABLE[kind])
    assert all(line.isascii() for line in report.lines())  # printed by the CLI, also to a cp1252 Windows console


def test_what_is_not_loaded_is_counted_and_explained(pipe, tmp_path):
    pipe_, family = pipe
    dora, _ = make_file("dora", pipe_, family, tmp_path)
    report = compat_report(dora)
    n = len(dora.modules)
    assert verdict(report, "diffusers").keys_not_loaded == n  # one dora_scale per module, dropped
    assert "dropped" in verdict(report, "diffusers").notes[0]
    assert "per input column" in verdict(report, "a1111").notes[0]
    loha, _ = make_file("loha", pipe_, family, tmp_path)
    r = compat_report(loha)
    assert verdict(r, "diffusers").keys_not_loaded == verdict(r, "diffusers").total_keys
    assert verdict(r, "sd-scripts").keys_not_loaded == verdict(r, "sd-scripts").total_keys  # every module is LoHa
    assert "LoRA/LoCon only" in verdict(r, "sd-scripts").notes[0]
    assert dict(r.features) == {"loha": len(loha.modules)}


def test_input_axis_dora_renders_in_a1111_which_normalises_per_column(pipe):
    pipe_, family = pipe
    lf = _with_dora(random_lora(pipe_, family), axis="in")
    report = compat_report(lf)
    assert verdict(report, "a1111").status == "ok"
    assert verdict(report, "diffusers").status == "partial"
    assert dict(report.features)["dora-in"] == len(lf.modules)


def test_tucker_locon_is_refused_by_diffusers_and_skipped_by_sd_scripts():
    m = LoraModule(name="lora_unet_x_conv1", down=torch.ones(2, 8, 1, 1), up=torch.ones(8, 2, 1, 1),
                   mid=torch.ones(2, 2, 3, 3), alpha=2.0)
    from studio.formats.lora_file import LoraFile

    report = compat_report(LoraFile(modules={m.name: m}, family="sd1"))
    assert [verdict(report, k).status for k in LOADER_KEYS] == ["ok", "ok", "ok", "refused", "partial"]
    assert verdict(report, "sd-scripts").keys_not_loaded == 4  # down, up, mid, alpha


def test_sidecar_round_trip_and_damage(tmp_path):
    m = LoraModule(name="lora_unet_a", down=torch.ones(2, 4), up=torch.ones(4, 2), alpha=1.0,
                   dora_scale=torch.ones(4, 1))
    from studio.formats.lora_file import LoraFile

    report = compat_report(LoraFile(modules={m.name: m}, family="sd1"))
    lora = tmp_path / "my lora.safetensors"
    written = write_sidecar(lora, report)
    assert written == tmp_path / "my lora.compat.json" == sidecar_path(lora)
    data = json.loads(written.read_text(encoding="utf-8"))
    assert data["file"] == "my lora.safetensors" and data["plain_copy_advised"] is True
    assert {d["loader"]: d["status"] for d in data["loaders"]}["a1111"] == "wrong"
    assert read_sidecar(lora) == report
    assert report_from_dict(report_to_dict(report)) == report
    written.write_bytes(b"\xef\xbb\xbf" + written.read_bytes().replace(b"\n", b"\r\n"))  # as Notepad saves it
    assert read_sidecar(lora) == report
    written.write_text("{not json", encoding="utf-8")
    assert read_sidecar(lora) is None
    with pytest.raises(ValueError, match="version"):
        report_from_dict({**data, "version": 99})
    # read strictly, through the one codec: "yes" is not a boolean, an unknown field is not ours
    first = data["loaders"][0]
    for bad in ({**first, "faithful": "yes"}, {**first, "total_keys": "12"}, {**first, "colour": "red"}):
        with pytest.raises(ValueError, match="damaged compatibility report"):
            report_from_dict({**data, "loaders": [bad]})
    with pytest.raises(ValueError, match="damaged"):
        report_from_dict({**data, "features": {"dora": "many"}})


# --- the diffusers column, against the installed diffusers -------------------------------------------------

@pytest.mark.parametrize("kind", ["lora-te", "locon", "loha", "lokr", "dora"])
def test_diffusers_column_is_what_the_installed_diffusers_does(kind, tiny_sd1, tmp_path):
    from tests.diffusers_helpers import load_lora_collecting_messages, sd_pipeline

    pipe_ = sd_pipeline(tiny_sd1)
    lf, path = make_file(kind, pipe_, "sd1", tmp_path)
    expected = verdict(compat_report(lf), "diffusers").status
    if expected == "refused":
        with pytest.raises(ValueError, match="not been correctly renamed"):
            pipe_.load_lora_weights(str(path))
        return
    messages = load_lora_collecting_messages(pipe_, path, level=logging.WARNING)
    dora_dropped = [m for m in messages if "dora_scale" in m]
    assert bool(dora_dropped) == (expected == "partial"), messages
    other = [m for m in messages if "dora_scale" not in m and ("unexpected" in m.lower() or "missing" in m.lower())]
    assert not other, other


@pytest.mark.parametrize("axis", ["out", "in"])
def test_a1111_dora_verdict_follows_its_per_column_math(axis, pipe):
    """The A1111 cell of the DoRA rows from A1111's formula (tests/dora_consumers.py) against our ΔW: an
    output-axis scale renders wrong there, an input-axis one exactly; ComfyUI renders both."""
    from studio.formats.kohya import to_tensors
    from studio.mix.delta import module_delta
    from tests import dora_consumers

    pipe_, family = pipe
    lf = _with_dora(random_lora(pipe_, family, te=False), axis=axis)
    tensors = to_tensors(lf, torch.float32)
    weights = {name: mod.weight.detach().float() for name, mod in _named_layers(pipe_, family).items()}
    worst = {"a1111": 0.0, "comfyui": 0.0}
    for name, m in lf.modules.items():
        w = weights[name]
        want = w + module_delta(m, weight=w)
        for loader, render in (("a1111", dora_consumers.a1111), ("comfyui", dora_consumers.comfyui)):
            got = render(tensors, name, w)
            worst[loader] = max(worst[loader], float((got - want).norm() / (want - w).norm()))
    report = compat_report(lf)
    assert worst["comfyui"] < 1e-4 and verdict(report, "comfyui").status == "ok"
    if axis == "out":
        assert worst["a1111"] > 0.5 and verdict(report, "a1111").status == "wrong"
    else:
        assert worst["a1111"] < 1e-4 and verdict(report, "a1111").status == "ok"


def _named_layers(pipe_, family):
    from studio.formats.names import kohya_name_for
    from tests.lora_maker import target_modules

    return {kohya_name_for(c, p, family): mod for c, p, mod in target_modules(pipe_, te=False)}
