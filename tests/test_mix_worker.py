"""The mixer's jobs in the real worker process: the base model is loaded once and reused between previews."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import studio.events as ev
from studio.job_requests import MixExportRequest, MixPreviewRequest
from studio.mix.messages import MixResult
from studio.mix.request import MixEntry, RenderRequest
from studio.worker import protocol as p
from studio.worker.client import WorkerProcess
from tests.lora_maker import lora_metadata, random_lora, write_kohya


@pytest.fixture
def worker():
    w = WorkerProcess()
    w.start()
    yield w
    w.kill()
    w.wait_exited(10)


def _result(worker: WorkerProcess, request_id: int) -> MixResult:
    seen: list = []
    try:
        return worker.wait_for(lambda m: isinstance(m, MixResult) and m.request_id == request_id
                               or isinstance(m, ev.Failed), 240, seen)
    except TimeoutError:
        raise AssertionError(f"no result; saw {seen[-5:]}") from None


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_previews_reuse_the_loaded_base_and_exports_come_back(worker, tiny_sd1, tmp_path):
    from studio.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("sd1")
    lora = write_kohya(random_lora(pipe, "sd1", rank=2, metadata=lora_metadata("sd1", "w")), tmp_path / "w.safetensors")
    request = RenderRequest(prompt="a red thing", steps=2, width=64, height=64, seed=1,
                            loras=(MixEntry(str(lora), 0.5),))
    for i, strength in enumerate((0.5, 1.0), start=1):
        out = tmp_path / f"preview-{i}.png"
        worker.send(MixPreviewRequest(base=str(tiny_sd1), out=str(out), request_id=i,
                                      request=request.with_strength(0, strength)))
        result = _result(worker, i)
        assert isinstance(result, MixResult), result
        assert Image.open(result.path).size == (64, 64)
        assert ("base model loaded" in result.summary) == (i == 1)  # the second preview reloads nothing
        worker.wait_for(ev.Finished, 120)

    out = tmp_path / "merged.safetensors"
    worker.send(MixExportRequest(loras=(MixEntry(str(lora), 0.7),), out=str(out), rank=1, request_id=9))
    result = _result(worker, 9)
    assert isinstance(result, MixResult) and Path(result.path) == out and out.exists()
    assert result.error is not None and "relative error" in result.summary
    # the worker takes one job at a time: a command sent before this job's Finished would be refused as
    # "already running" (what happened under load)
    worker.wait_for(ev.Finished, 120)

    worker.send(MixPreviewRequest(base=str(tiny_sd1), out=str(tmp_path / "x.png"), request_id=10,
                                  request=RenderRequest(prompt="x", steps=2, width=60, height=64)))
    failed = _result(worker, 10)
    assert isinstance(failed, ev.Failed) and "multiple of 8" in failed.error
