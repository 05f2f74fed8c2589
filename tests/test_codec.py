"""The one codec: strict at every depth, errors in our words with the value's path, NaN losses kept."""

from __future__ import annotations

import json
import math

import pytest

from studio.codec import CodecError, describe, from_data, to_data
from studio.events import Finished, Progress
from studio.job_requests import MixExportRequest
from studio.mix.request import MixEntry, RenderRequest
from studio.run_folder import EventLog, event_line, parse_event_line, read_events
from studio.worker import protocol as p


def test_plain_data_round_trips_into_the_same_frozen_dataclasses():
    request = RenderRequest(prompt="ä", loras=(MixEntry(path="/a", blocks=(("IN04", 0.5),)),))
    data = json.loads(json.dumps(to_data(request)))  # what arrives from a JSON line: lists, not tuples
    assert data["loras"][0]["blocks"] == [["IN04", 0.5]]
    back = from_data(data, RenderRequest)
    assert back == request and isinstance(back.loras, tuple) and isinstance(back.loras[0].blocks[0], tuple)


@pytest.mark.parametrize("data, message", [
    ({"prompt": "x", "steps": "abc"}, '`render.steps` is "abc", expected an integer'),
    ({"prompt": "x", "steps": True}, "`render.steps` is true, expected an integer"),
    ({"prompt": "x", "guidance": "7"}, '`render.guidance` is "7", expected a number'),
    ({"prompt": 5}, "`render.prompt` is 5, expected a string"),
    ({}, "`render` is missing required field `prompt`"),
    ({"prompt": "x", "loras": {"path": "a"}}, '`render.loras` is {"path": "a"}, expected a list'),
    ({"prompt": "x", "loras": [{"path": "a", "unet": "x"}]}, '`render.loras[0].unet` is "x", expected a number or null'),
    ({"prompt": "x", "loras": [{"path": "a", "extra": 1}]}, "`render.loras[0]` has no field(s) extra"),
    ({"prompt": "x", "seed": 1, "zz": 2, "aa": 3}, "`render` has no field(s) aa, zz"),
])
def test_bad_values_are_named_by_path_in_our_words(data, message):
    with pytest.raises(CodecError) as info:
        from_data(data, RenderRequest, where="render")
    assert str(info.value) == message
    assert "Expected `" not in str(info.value)  # never msgspec's own text


def test_a_check_of_the_dataclass_itself_is_a_codec_error_too():
    with pytest.raises(CodecError, match="strength is nan"):
        from_data({"path": "/a", "strength": float("nan")}, MixEntry, where="entry")
    with pytest.raises(CodecError) as info:
        from_data({"loras": [], "out": "/o", "dtype": "fp8"}, MixExportRequest, where="mix_export")
    assert str(info.value) == "`mix_export.dtype` is \"fp8\", expected one of 'fp16', 'bf16', 'fp32'"
    assert describe(int | None) == "an integer or null"


def test_a_diverged_loss_survives_the_pipe_and_the_event_log(tmp_path):
    diverged = Progress(step=3, total=9, epoch=0, loss=float("nan"), smoothed_loss=float("inf"), lr=1e-4,
                        it_per_s=1.0)
    back = p.decode_event(p.encode(diverged))
    assert math.isnan(back.loss) and back.smoothed_loss == math.inf
    log = EventLog(tmp_path / "events.jsonl")
    log.write(diverged)
    log.write(Finished(outputs=("/o/a.safetensors",), step=9))
    log.close()
    assert "NaN" in (tmp_path / "events.jsonl").read_text()
    progress, finished = read_events(tmp_path / "events.jsonl")
    assert isinstance(progress, Progress) and math.isnan(progress.loss) and progress.smoothed_loss == math.inf
    assert finished == Finished(outputs=("/o/a.safetensors",), step=9, time=finished.time)


@pytest.mark.parametrize("line", [
    '{"type": "progress", "step": 1}',  # fields missing
    '{"type": "progress", "step": "1", "total": 2, "epoch": 0, "loss": 1, "smoothed_loss": 1, "lr": 1, "it_per_s": 1}',
    '{"type": "finished", "outputs": [], "rm": "-rf"}',
    '{"type": "mix_result", "kind": "preview", "request_id": 1, "path": "/p"}',  # not an event of a run
    '{"type": ["started"]}', '[1]', '{"type": "finished", "outputs": [', "",
])
def test_lines_of_the_event_log_that_are_not_events_are_skipped(line):
    assert parse_event_line(line) is None


def test_an_event_line_reads_back_equal():
    event = Finished(outputs=("a", "b"), step=3, stopped=True)
    assert parse_event_line(event_line(event)) == event
