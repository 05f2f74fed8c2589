"""The worker protocol: round trips, and every kind of bad line fails with a clear ProtocolError."""

from __future__ import annotations

import io
import json
import math

import pytest

from studio import events as ev
from studio.job_requests import TrainRequest
from studio.worker import protocol as p


def _line(**data) -> bytes:
    return json.dumps(data).encode() + b"\n"


COMMANDS = [
    TrainRequest(config_toml="[schedule]\nmax_steps = 4\n", project_file="/x/project.toml", resume_from=None),
    TrainRequest(config_toml="", resume_from="/r/checkpoints/checkpoint-2", run_dir="/r", request_id=4),
    p.Pause(), p.Resume(), p.Stop(), p.SaveNow(), p.SampleNow(), p.Shutdown(), p.Ping(nonce=7),
]

EVENTS = [
    ev.Started(run_dir="/r", total_steps=10, start_step=2, num_images=3, device="cpu"),
    ev.Progress(step=3, total=10, epoch=1, loss=0.25, smoothed_loss=0.3, lr=1e-4, it_per_s=2.5, eta_s=None),
    ev.Progress(step=4, total=10, epoch=1, loss=float("nan"), smoothed_loss=float("inf"), lr=0, it_per_s=1),
    ev.Validation(step=3, loss=0.2),
    ev.Sample(step=4, prompt="a cat\nline two", seed=1, path="/r/samples/step-4-0.png"),
    ev.Checkpoint(path="/r/checkpoints/checkpoint-4", step=4),
    ev.Log(level="info", text="hello ✓"),
    ev.StateChanged(state="paused"),
    ev.Finished(outputs=("/o/a.safetensors", "/o/b.safetensors"), step=10, stopped=True),
    ev.Failed(error="boom", hint="try again", traceback="Traceback..."),
    p.Starting(pid=12), p.Ready(pid=12, python="3.11", torch="2.13", device="cpu", import_s=7.5),
    p.Heartbeat(seq=3, busy=True, job="train"), p.Pong(nonce=7), p.WorkerError(error="bad"),
    p.JobStarted(job_id=1, kind="start", request_id=3), p.JobEnded(job_id=1, kind="start"),
    ev.JobProgress(request_id=2, done=3, total=20, unit="steps", eta_s=4.5),
    p.WorkerError(error="a training job is already running", request_id=5),
]


@pytest.mark.parametrize("message", COMMANDS, ids=lambda m: m.type)
def test_commands_round_trip(message):
    line = p.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["v"] == p.PROTOCOL_VERSION
    assert p.decode_command(line) == message


@pytest.mark.parametrize("message", EVENTS, ids=lambda m: m.type)
def test_events_round_trip(message):
    back = p.decode_event(p.encode(message))
    assert type(back) is type(message)
    for name in message.__dataclass_fields__:
        a, b = getattr(message, name), getattr(back, name)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), name


def test_every_studio_event_type_is_an_event_message():
    assert set(ev.EVENT_TYPES) <= set(p.EVENT_MESSAGE_TYPES)
    assert not set(p.COMMAND_TYPES) & set(p.EVENT_MESSAGE_TYPES)


@pytest.mark.parametrize("line, needle", [
    (b"", "empty line"),
    (b"   \n", "empty line"),
    (b'{"v":1,"type":"pause"', "not JSON"),  # truncated
    (b'{"v":1,"type":"pa', "not JSON"),
    (b"hello world\n", "not JSON"),
    (b"\xff\xfe{}\n", "not UTF-8"),
    (b"[1,2]\n", "expected a JSON object"),
    (b'{"type":"pause"}\n', "protocol version None"),
    (b'{"v":2,"type":"pause"}\n', "protocol version 2"),
    (b'{"v":true,"type":"pause"}\n', "protocol version True"),
    (b'{"v":1}\n', "missing or non-string `type`"),
    (b'{"v":1,"type":5}\n', "missing or non-string `type`"),
    (b'{"v":1,"type":"explode"}\n', "unknown command type `explode`"),
    (b'{"v":1,"type":"progress"}\n', "unknown command type `progress`"),  # an event sent as a command
    (b'{"v":1,"type":"pause","extra":1}\n', "has no field(s) extra"),
    (b'{"v":1,"type":"start"}\n', "missing required field `config_toml`"),
    (b'{"v":1,"type":"start","config_toml":3}\n', "`start.config_toml` is 3, expected a string"),
    (b'{"v":1,"type":"start","config_toml":"","resume_from":1}\n', "expected a string or null"),
    (b'{"v":1,"type":"ping","nonce":1.5}\n', "expected an integer"),
    (b'{"v":1,"type":"ping","nonce":true}\n', "expected an integer"),
    (b'{"v":1,"type":"job","kind":"x","params":{}}\n', "unknown command type `job`"),
    (b'{"v":1,"type":"os:system","command":"ls"}\n', "unknown command type `os:system`"),
])
def test_bad_command_lines_raise_protocol_error(line, needle):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_command(line)
    assert needle in str(info.value)


@pytest.mark.parametrize("data, needle", [
    ({"type": "progress", "step": 1}, "missing required field `total`"),
    ({"type": "progress", "step": "1", "total": 2, "epoch": 0, "loss": 1, "smoothed_loss": 1, "lr": 1,
      "it_per_s": 1}, "`progress.step` is \"1\", expected an integer"),
    ({"type": "heartbeat", "seq": 1, "busy": 1}, "expected true or false"),
    ({"type": "finished", "outputs": "a.safetensors"}, "expected a list"),
    ({"type": "finished", "outputs": [1]}, "expected a string"),
    ({"type": "start", "config_toml": ""}, "unknown event type `start`"),  # a command sent as an event
])
def test_bad_event_lines_raise_protocol_error(data, needle):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_event(_line(v=1, **data))
    assert needle in str(info.value)


def test_encode_refuses_oversized_messages():
    with pytest.raises(p.ProtocolError, match="over the 100-byte line limit"):
        p.encode(ev.Log(level="info", text="x" * 200), max_line=100)


def test_reader_survives_bad_lines_and_reports_truncation_at_eof():
    good = p.encode(p.Pause())
    stream = io.BytesIO(b"garbage\n" + good + b"x" * 5000 + b"\n" + good + b'{"v":1,"type":"st')
    reader = p.LineReader(stream, p.decode_command, max_line=1000)
    items = list(reader)
    assert [type(i).__name__ for i in items] == ["ProtocolError", "Pause", "ProtocolError", "Pause", "ProtocolError"]
    assert "not JSON" in str(items[0])
    assert "over the 1000-byte limit" in str(items[2])
    assert "truncated line" in str(items[4])
    assert reader.read() is None  # end of stream stays the end


def test_reader_accepts_line_exactly_at_limit_and_crlf():
    msg = p.encode(ev.Log(level="info", text="y" * 50))
    limit = len(msg) - 1
    reader = p.LineReader(io.BytesIO(msg + msg[:-1] + b"\r\n"), p.decode_event, max_line=limit)
    assert reader.read().text == "y" * 50
    assert reader.read().text == "y" * 50
    assert reader.read() is None


def test_writer_is_line_buffered_and_survives_a_closed_pipe():
    class Broken(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError

    out = io.BytesIO()
    writer = p.LineWriter(out)
    assert writer.write(p.Ping(nonce=1))
    assert p.decode_command(out.getvalue()) == p.Ping(nonce=1)
    broken = p.LineWriter(Broken())
    assert broken.write(p.Ping()) is False and broken.closed
    assert broken.write(p.Ping()) is False
