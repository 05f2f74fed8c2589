"""Weight files are read without trusting them: lying or truncated safetensors headers and code-running
pickles are refused with a message that names the problem, and the file is left as it was."""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file

from studio.errors import ModelLoadError, UnsafeFileError
from studio.models.safe_load import load_state_dict, load_with_metadata, read_safetensors_header


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def with_header(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def refused(path: Path, error: type[Exception], *words: str) -> Exception:
    before = fingerprint(path)
    with pytest.raises(error) as info:
        load_state_dict(path)
    assert fingerprint(path) == before
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert path.name in message
    return info.value


def test_valid_file_loads_with_metadata(tmp_path):
    path = tmp_path / "ok.safetensors"
    save_file({"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.float16)}, str(path),
              metadata={"k": "v"})
    tensors, metadata = load_with_metadata(path)
    assert torch.equal(tensors["a"], torch.arange(6.0).reshape(2, 3))
    assert tensors["b"].dtype == torch.float16
    assert metadata == {"k": "v"}
    header = read_safetensors_header(path)
    assert header.tensors["a"].shape == (2, 3) and header.file_bytes == path.stat().st_size


def test_truncated_file(tmp_path):
    blob = save({"w": torch.randn(64, 64)})
    path = tmp_path / "cut.safetensors"
    path.write_bytes(blob[:-1000])
    err = refused(path, ModelLoadError, "truncated")
    assert "download" in err.hint


def test_truncated_inside_header(tmp_path):
    path = tmp_path / "cut-header.safetensors"
    path.write_bytes(save({"w": torch.randn(4)})[:20])
    refused(path, ModelLoadError, "truncated")


def test_header_lies_about_size(tmp_path):
    data = torch.zeros(6).numpy().tobytes()  # 24 bytes
    path = tmp_path / "lies.safetensors"
    path.write_bytes(with_header({"w": {"dtype": "F32", "shape": [100, 100], "data_offsets": [0, 24]}}, data))
    refused(path, UnsafeFileError, "`w`", "(100, 100)", "lies about its sizes")


def test_header_offsets_overlap(tmp_path):
    data = bytes(32)
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(with_header(header, data))
    refused(path, UnsafeFileError, "overlap")


def test_header_offsets_past_end(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    path = tmp_path / "past-end.safetensors"
    path.write_bytes(with_header(header, bytes(16)))
    refused(path, ModelLoadError, "4,000 bytes", "truncated")


def test_header_gap_and_unknown_dtype(tmp_path):
    gap = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    (tmp_path / "gap.safetensors").write_bytes(with_header(gap, bytes(16)))
    refused(tmp_path / "gap.safetensors", UnsafeFileError, "belong to no tensor")
    odd = {"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}
    (tmp_path / "dtype.safetensors").write_bytes(with_header(odd, bytes(8)))
    refused(tmp_path / "dtype.safetensors", UnsafeFileError, "unknown dtype")


def test_huge_header_claim_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}" + bytes(100))
    refused(path, ModelLoadError, "not a safetensors file")


def test_text_file_is_not_a_model(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are my notes, not a model\n" * 4)
    refused(path, ModelLoadError)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    refused(other, ModelLoadError, "not a weights file")


class _RunsCode:
    """Unpickling this would create `marker`: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("kind", ["torch-zip", "raw-pickle"])
def test_malicious_ckpt_is_refused_and_does_not_run(tmp_path, kind):
    marker = tmp_path / "pwned.txt"
    payload = {"state_dict": {"model.diffusion_model.w": torch.zeros(2)}, "callback": _RunsCode(marker)}
    path = tmp_path / "model.ckpt"
    if kind == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    assert not marker.exists()
    err = refused(path, UnsafeFileError, "refused", "run code")
    assert "safetensors" in err.hint
    assert not marker.exists(), "unpickling ran the file's code"


def test_plain_ckpt_loads_and_unwraps_state_dict(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"a": torch.ones(3), "nested": {"b": torch.zeros(2)}}, "global_step": 7}, path)
    tensors = load_state_dict(path)
    assert set(tensors) == {"a", "nested.b"}
    assert torch.equal(tensors["a"], torch.ones(3))
