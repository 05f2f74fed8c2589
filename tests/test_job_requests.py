"""Typed job requests on the worker pipe: every request round-trips, bad values are refused by path, and a
line that names a function is refused by a real worker process without importing or running anything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from studio.job_requests import (JOB_REQUEST_TYPES, AutoCaptionRequest, DemoProjectRequest, MixBakeRequest,
                                 MixExportRequest, MixGridRequest, MixPreviewRequest, PlainCopyRequest, TrainRequest)
from studio.mix.grid import GridAxis
from studio.mix.request import MixEntry, RenderRequest
from studio.worker import protocol as p
from studio.worker.client import worker_env

ENTRY = MixEntry(path="/l/ä.safetensors", strength=0.5, unet=0.75, te=None, blocks=(("IN04", 0.25),), enabled=False)
RENDER = RenderRequest(prompt="a cat", negative="dog", seed=3, steps=12, width=64, height=96, guidance=5.5,
                       loras=(ENTRY, MixEntry(path="/l/b.safetensors")))
REQUESTS = [
    TrainRequest(config_toml="[schedule]\nmax_steps = 4\n", project_file="/p/project.toml", request_id=1),
    MixPreviewRequest(base="/m", out="/o.png", request=RENDER, device="cpu", request_id=2),
    MixGridRequest(base="/m", out="/g.png", request=RENDER, x=GridAxis(lora=0, values=(0.0, 1.5)),
                   y=GridAxis(lora=1, values=(1.0,), label="b"), request_id=3),
    MixExportRequest(loras=(ENTRY,), out="/x.safetensors", rank=8, dtype="bf16", request_id=4),
    MixBakeRequest(base="/m", loras=(ENTRY,), out="/baked.safetensors", dtype=None, request_id=5),
    PlainCopyRequest(src="/a.safetensors", out="/b.safetensors", rank=4, base="/m", request_id=6),
    AutoCaptionRequest(model="/wd14", images=("/d/1.png", "/d/2.jpg"), mode="only-empty", kind="wd14",
                       threshold=0.5, request_id=7),
    DemoProjectRequest(folder="/demo", request_id=8),
]


def test_every_request_type_is_a_command_and_is_covered_here():
    assert {type(r) for r in REQUESTS} == set(JOB_REQUEST_TYPES)
    for cls in JOB_REQUEST_TYPES:
        assert p.COMMAND_TYPES[cls.type] is cls
    assert not hasattr(p, "RunJob") and not hasattr(p, "Start") and not hasattr(p, "register_command")


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.type)
def test_requests_round_trip(request_):
    line = p.encode(request_)
    assert json.loads(line)["type"] == request_.type
    back = p.decode_command(line)
    assert back == request_ and type(back) is type(request_)


def _grid_line(**change) -> bytes:
    data = json.loads(p.encode(REQUESTS[2]))
    for path, value in change.items():
        *parents, leaf = path.split("__")
        target = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(leaf) if leaf.isdigit() else leaf] = value
    return json.dumps(data).encode() + b"\n"


@pytest.mark.parametrize("change, message", [
    ({"request__steps": "abc"}, '`mix_grid.request.steps` is "abc", expected an integer'),
    ({"request__loras__1__strength": "1"}, '`mix_grid.request.loras[1].strength` is "1", expected a number'),
    ({"x__values": [0.5, None]}, "`mix_grid.x.values[1]` is null, expected a number"),
    ({"y": 3}, "`mix_grid.y` is 3, expected an object or null"),
    ({"request__loras__0__enabled": 1}, "`mix_grid.request.loras[0].enabled` is 1, expected true or false"),
    ({"request__loras__0__path": ["x"]}, "`mix_grid.request.loras[0].path` is [\"x\"], expected a string"),
    ({"request__loras__0__strength": float("nan")}, "strength is nan, expected a number between -100 and 100"),
])
def test_a_nested_wrong_value_is_refused_naming_its_path(change, message):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_command(_grid_line(**change))
    assert message in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"shell": "rm -rf /"}, "`mix_grid` has no field(s) shell"),
    ({"request__callback": "os:system"}, "`mix_grid.request` has no field(s) callback"),
    ({"request__loras__1__module": "studio.demo"}, "`mix_grid.request.loras[1]` has no field(s) module"),
    ({"x__kind": "x"}, "`mix_grid.x` has no field(s) kind"),
])
def test_unknown_fields_are_refused_at_every_depth(change, message):
    with pytest.raises(p.ProtocolError) as info:
        p.decode_command(_grid_line(**change))
    assert message in str(info.value)


def test_a_missing_nested_field_and_a_wrong_literal_are_named():
    data = json.loads(p.encode(REQUESTS[3]))
    data["loras"][0].pop("path")
    with pytest.raises(p.ProtocolError, match=r"`mix_export.loras\[0\]` is missing required field `path`"):
        p.decode_command(json.dumps(data).encode())
    data = json.loads(p.encode(REQUESTS[3]))
    data["dtype"] = "int4"
    with pytest.raises(p.ProtocolError) as info:
        p.decode_command(json.dumps(data).encode())
    assert "`mix_export.dtype` is \"int4\", expected one of 'fp16', 'bf16', 'fp32'" in str(info.value)


# the Worker class in a process of its own, on real pipes; it reports what was imported and called
_WORKER_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    calls = []
    os.system = lambda *a, **k: calls.append(["os.system", *map(str, a)]) or 0
    subprocess.Popen = lambda *a, **k: calls.append(["Popen", *map(str, a)])
    from studio.worker import protocol as p
    from studio.worker.process import Worker

    snapshots = []

    class Watched(Worker):
        def _handle(self, cmd):
            if isinstance(cmd, p.Ping):
                snapshots.append(sorted(sys.modules))
            super()._handle(cmd)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    code = Watched(stdin, stdout, heartbeat_s=60, warm_up=False).serve()
    sys.stderr.write(json.dumps({"code": code, "calls": calls, "snapshots": snapshots}) + "\\n")
""")


def test_a_line_naming_a_function_is_refused_by_a_real_worker_without_importing_anything(tmp_path):
    hostile = [
        b'{"v":1,"type":"os:system","command":"echo owned > owned.txt"}',
        b'{"v":1,"type":"job","kind":"studio.demo:create_demo_project","params":{}}',
        b'{"v":1,"type":"job","kind":"mix_preview","params":{"base":"/m"}}',
        b'{"v":1,"type":"studio.demo:create_demo_project","folder":"demo"}',
        b'{"v":1,"type":"start","config_toml":"","__init__":"os:system"}',
    ]
    lines = [p.encode(p.Ping(nonce=1)), *(h + b"\n" for h in hostile), p.encode(p.Ping(nonce=2)),
             p.encode(p.Shutdown())]
    proc = subprocess.run([sys.executable, "-c", _WORKER_SCRIPT], input=b"".join(lines), capture_output=True,
                          env=worker_env(), cwd=str(tmp_path), timeout=120)
    report = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    events = [p.decode_event(line) for line in proc.stdout.splitlines(keepends=True)]
    errors = [e for e in events if isinstance(e, p.WorkerError)]
    assert [type(e).__name__ for e in events if not isinstance(e, (p.Heartbeat, p.WorkerError, p.Ready))] == \
        ["Starting", "Pong", "Pong"]
    assert len(errors) == len(hostile) and all("ignored a bad command line" in e.error for e in errors)
    assert "unknown command type `os:system`" in errors[0].error
    assert "unknown command type `job`" in errors[1].error
    assert "`start` has no field(s) __init__" in errors[4].error
    assert not [e for e in events if isinstance(e, p.JobStarted)]  # no job of any kind was started
    assert report["code"] == 0 and report["calls"] == []
    before, after = (set(s) for s in report["snapshots"])
    assert after - before == set()  # the refusals imported nothing
    assert "studio.demo" not in after and "torch" not in after and "studio.worker.jobs" not in after
    assert not (tmp_path / "owned.txt").exists()
