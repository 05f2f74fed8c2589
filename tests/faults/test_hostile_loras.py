"""LoRA files with NaN/Inf weights, missing alphas, factors that do not fit, keys for another model or for no
model, and hostile metadata, through the reader (`read_lora`, `read_lora_report`) and `inspect`, in a child
process (a pattern in the metadata could make a regex backtrack for ever: the child is killed after 30 s).

Documented handling: NaN/Inf weights or alphas are refused by `read_lora` and loaded by
`read_lora(allow_nonfinite=True)` (for inspection); a missing alpha means a scale of 1 (kohya's rule); a LoRA
for another family loads with that family detected (the mixer refuses to apply it to the wrong model).
"""

from __future__ import annotations

import pytest

from tests.faults.test_hostile_safetensors import run_fuzz

FAULT = "LoRA files: NaN/Inf, alphas, shapes, other models, metadata"


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_hostile_lora_files(ledger, tmp_path):
    proc, lines = run_fuzz("loras", tmp_path)
    cases = [x for x in lines if "case" in x]
    begun = [x["begin"] for x in lines if "begin" in x]
    broken = []
    if len(begun) > len(cases):
        broken.append(f"{begun[-1]}: killed the process (exit {proc.returncode}; -14 is the 30 s alarm: a hang)")
        ledger.record(FAULT, "crash", begun[-1])
    assert proc.returncode == 0 or broken, proc.stderr[-2000:]
    for x in cases:
        r, expect = x["results"], x["expect"]
        problems = [f"{k} raised {v[6:200]}" for k, v in r.items() if v.startswith("crash:")]
        if expect == "error" and r["read"] == "ok":
            problems.append("read_lora accepted it")
        if expect == "ok":
            problems += [f"{k} refused a usable file: {v[:200]}" for k, v in r.items() if v != "ok"]
        if expect == "nonfinite":
            if "NaN or infinite" not in r["read"]:
                problems.append(f"read_lora did not refuse the NaN/Inf: {r['read'][:200]}")
            if r["read_nonfinite"] != "ok":
                problems.append(f"allow_nonfinite did not load it: {r['read_nonfinite'][:200]}")
        if r["read"].startswith("error:") and "case.safetensors" not in r["read"]:
            problems.append(f"the message does not name the file: {r['read'][:200]}")
        if x["peak_growth_mb"] > 64:
            problems.append(f"memory grew by {x['peak_growth_mb']} MB")
        ledger.record(FAULT, "crash" if problems else "clear", f"{x['case']}: {problems}")
        if problems:
            broken.append(f"{x['case']}: " + "; ".join(problems))
    assert len(cases) >= 70
    assert not broken, "\n".join(broken)


def test_missing_alpha_means_scale_one_and_alpha_nan_is_refused(tmp_path):
    """The two documented rules, checked on the values (not only on error/no error)."""
    import pytest
    import torch
    from safetensors.torch import save_file

    from studio.errors import LoraFormatError
    from studio.formats.reader import read_lora
    from tests.faults.hostile_loras import ATTN, good_modules

    tensors = {k: v for k, v in good_modules().items() if k != f"{ATTN}.alpha"}
    save_file(tensors, str(tmp_path / "no-alpha.safetensors"))
    lf = read_lora(tmp_path / "no-alpha.safetensors")
    assert lf.modules[ATTN].alpha is None and lf.modules[ATTN].scale == 1.0
    save_file({**tensors, f"{ATTN}.alpha": torch.tensor(float("nan"))}, str(tmp_path / "nan-alpha.safetensors"))
    with pytest.raises(LoraFormatError, match="NaN or infinite"):
        read_lora(tmp_path / "nan-alpha.safetensors")
