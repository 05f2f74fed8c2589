"""Issue 16 D through the command line and the worker job: `inspect` ends with the per-loader report
(`--loaders` says why, `--json` carries it), `mix` prints it for the merged file and writes its sidecar,
`plain` writes the plain-LoRA copy (refusing a DoRA file without its base model), and the `mix_plain`
worker job the window uses does the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.formats.compat_report import read_sidecar
from studio.formats.kohya import save_lora_file
from studio.formats.reader import read_lora
from tests.diffusers_helpers import sd_pipeline
from tests.lora_maker import random_lora


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def dora_file(tiny_sd1, tmp_path) -> Path:
    lf = random_lora(sd_pipeline(tiny_sd1), "sd1", rank=4, seed=2)
    for m in lf.modules.values():
        m.dora_scale = torch.full((m.up.shape[0], 1), 1.5)
    return save_lora_file(lf, tmp_path / "dora.safetensors", dtype="fp32")


def test_inspect_ends_with_the_loader_report(capsys, dora_file):
    code, out, _ = _run(capsys, "inspect", str(dora_file))
    assert code == 0
    tail = out.split("loaders:\n", 1)[1].splitlines()
    assert tail[0].startswith("  AUTOMATIC1111 1.10.1: wrong - all keys load")
    assert any(line.startswith("  ComfyUI late 2026 (master): ok - all ") for line in tail)
    assert any(line.startswith("  diffusers 0.42.1: partial - ") for line in tail)
    assert "per input column" not in out  # the reasons only with --loaders
    assert "lora-studio plain FILE --rank R" in out
    code, out, _ = _run(capsys, "inspect", "--loaders", str(dora_file))
    assert "always normalises per input column" in out and "dropped with a warning" in out
    code, out, _ = _run(capsys, "inspect", "--json", str(dora_file))
    data = json.loads(out)["compatibility"]
    assert {d["loader"]: d["status"] for d in data["loaders"]} == {
        "a1111": "wrong", "forge": "ok", "comfyui": "ok", "diffusers": "partial", "sd-scripts": "partial"}
    n = len(read_lora(dora_file).modules)
    assert data["features"] == {"dora-out": n, "lora": n}


def test_plain_refuses_dora_without_the_base_model_and_writes_a_copy_with_it(capsys, dora_file, tiny_sd1, tmp_path):
    out_file = tmp_path / "plain.safetensors"
    code, out, err = _run(capsys, "plain", str(dora_file), "--rank", "8", "-o", str(out_file))
    assert code == 2 and "is a DoRA LoRA" in err and "--base MODEL" in err and out == ""
    assert not out_file.exists()
    code, out, err = _run(capsys, "plain", str(dora_file), "--rank", "8", "-o", str(out_file),
                          "--base", str(tiny_sd1))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(out_file)
    assert "relative error" in err and "diffusers 0.42.1: ok" in err
    copy = read_lora(out_file)
    assert max(copy.ranks()) <= 8 and not any(m.dora_scale is not None for m in copy.modules.values())
    assert copy.metadata["ls_plain_copy_of"] == "dora.safetensors"
    assert read_sidecar(out_file).plain_copy_advised is False
    code, _, err = _run(capsys, "plain", str(dora_file), "--rank", "0", "-o", str(out_file))
    assert code == 2 and "--rank must be at least 1" in err


def test_mix_prints_the_merged_files_report_and_writes_its_sidecar(capsys, tiny_sd1, tmp_path):
    lf = random_lora(sd_pipeline(tiny_sd1), "sd1", rank=4, seed=4)
    src = save_lora_file(lf, tmp_path / "a.safetensors", dtype="fp32")
    out_file = tmp_path / "mixed.safetensors"
    code, out, err = _run(capsys, "mix", f"{src}:0.5", "-o", str(out_file))
    assert code == 0, err
    assert "AUTOMATIC1111 1.10.1: ok - all " in err and "sd-scripts" in err
    report = read_sidecar(out_file)
    assert report is not None and {v.status for v in report.verdicts} == {"ok"}


def test_the_windows_plain_copy_job_writes_the_copy(dora_file, tiny_sd1, tmp_path):
    from studio.errors import ConfigError
    from studio.mix.messages import MixResult
    from studio.job_requests import PlainCopyRequest
    from studio.worker.jobs import resolve_job

    out_file = tmp_path / "job-plain.safetensors"
    request = PlainCopyRequest(src=str(dora_file), out=str(out_file), rank=4)
    job = resolve_job(request)
    with pytest.raises(ConfigError, match="needs the base model"):
        list(job(request, None))
    request = PlainCopyRequest(src=str(dora_file), out=str(out_file), rank=4, base=str(tiny_sd1), dtype="fp32",
                               request_id=7)
    events = list(job(request, None))
    result = next(e for e in events if isinstance(e, MixResult))
    assert (result.kind, result.request_id, result.path) == ("plain", 7, str(out_file))
    assert result.error is not None and 0 < result.error < 1 and "relative error" in result.summary
    assert float(read_lora(out_file).metadata["ls_plain_copy_error"]) == pytest.approx(result.error, rel=1e-5)


def test_inspect_says_the_rules_are_for_the_kohya_layout_when_a_file_is_in_another(capsys, tiny_sd1, tmp_path):
    from tests.lora_maker import write_peft

    pipe = sd_pipeline(tiny_sd1)
    peft_file = write_peft(pipe, random_lora(pipe, "sd1", rank=4), tmp_path / "peft.safetensors")
    code, out, _ = _run(capsys, "inspect", str(peft_file))
    assert code == 0
    assert "these rules are for the kohya layout; this file is in the peft layout" in out
    kohya_file = save_lora_file(random_lora(pipe, "sd1", rank=4), tmp_path / "k.safetensors", dtype="fp32")
    _, out, _ = _run(capsys, "inspect", str(kohya_file))
    assert "loaders:" in out and "these rules are for the kohya layout" not in out
