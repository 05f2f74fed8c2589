"""The torch-free `.ckpt` reader the model picker uses (`studio.models.ckpt_scan`): what it reads is what
torch.load reads, and no hostile pickle gets past it or runs anything."""

from __future__ import annotations

import pytest
import torch

from studio.errors import StudioError, UnsafeFileError
from studio.models.ckpt_scan import scan_ckpt
from tests.faults.test_hostile_pickles import files as hostile_files


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    return {
        "model.diffusion_model.a.weight": torch.randn(3, 5, 2).half(),
        "model.diffusion_model.a.bias": torch.randn(7).to(torch.bfloat16),
        "cond_stage_model.b.weight": torch.randn(2, 2, dtype=torch.float64),
        "view": base[1:3],  # a view: a storage offset and a shared storage
        "base": base,
        "step": torch.tensor(1000, dtype=torch.int64),
        "param": torch.nn.Parameter(torch.randn(5)),
    }


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_names_shapes_dtypes_and_values_are_torch_loads(tmp_path, fmt):
    state = _state()
    path = tmp_path / f"model-{fmt}.ckpt"
    torch.save({"state_dict": state, "global_step": 5}, path, _use_new_zipfile_serialization=fmt == "zip")
    scan = scan_ckpt(path)
    assert scan.container == fmt
    codes = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.float32: "F32",
             torch.int64: "I64"}
    assert {k: (t.shape, t.dtype) for k, t in scan.tensors.items()} == {
        k: (tuple(v.shape), codes[v.dtype]) for k, v in state.items()}
    for key, value in state.items():
        if value.is_floating_point():
            assert scan.values(key) == value.detach().double().flatten().tolist(), key
    assert scan.values("step") is None and scan.values("missing") is None


def test_every_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "files").mkdir()
    cases = hostile_files(tmp_path / "files", marker)
    assert len(cases) >= 150
    unsafe = 0
    for case_id, path in cases:
        with pytest.raises(StudioError) as err:
            scan_ckpt(path)
        assert path.name in str(err.value), case_id
        assert "Traceback" not in str(err.value) and not marker.exists(), case_id
        unsafe += isinstance(err.value, UnsafeFileError)
    assert unsafe >= 100  # the payloads are named as such, not just "damaged"


def test_a_refusal_names_the_import(tmp_path):
    import os

    from tests.faults.test_hostile_pickles import _Reduce

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2), "x": _Reduce(os.system, "true")}}, path)
    with pytest.raises(UnsafeFileError) as err:
        scan_ckpt(path)
    assert "evil.ckpt: refused" in str(err.value) and "system" in str(err.value)
    assert "safetensors" in err.value.hint
