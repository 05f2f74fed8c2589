"""The worker protocol, version 1: typed messages as JSON lines over the worker's stdin/stdout pipes.

Every line is one JSON object `{"v": 1, "type": "<name>", ...fields}`, readable by a person and replayable
by a test. Commands go to the worker (control commands, and one typed request per job: nothing on the pipe
can name a module or a function); events come back (`studio.events` and the worker's own; images travel as
paths). Parsing is strict, as the other end may die mid-line, be another version or have garbage printed
onto its pipe: a bad line raises `ProtocolError`, and the reader stays usable. Values go through the one
codec (`studio.codec`), strictly and at every depth.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, ClassVar, Union

from studio.codec import CodecError, from_data, to_data
from studio.events import EVENT_TYPES, Event
from studio.job_requests import JOB_REQUEST_TYPES, JobRequest
from studio.mix.messages import MixResult  # the mixer jobs' results: a job event like the engine's

PROTOCOL_VERSION = 1
#: Longest accepted line in bytes (newline excluded). Events are small; a longer line means a bug or garbage.
MAX_LINE_BYTES = 1 << 20


class ProtocolError(ValueError):
    """A line that is not a valid message of this protocol version. `line` holds (a prefix of) the raw bytes."""

    def __init__(self, message: str, line: bytes = b"") -> None:
        super().__init__(message)
        self.line = line[:200]


# Commands (client → worker)
@dataclass(frozen=True)
class Command:
    type: ClassVar[str] = "command"


def _command(name: str, wire: str) -> type[Command]:
    return dataclass(frozen=True)(type(name, (Command,), {"type": wire, "__module__": __name__}))


Pause = _command("Pause", "pause")
Resume = _command("Resume", "resume")
Stop = _command("Stop", "stop")
SaveNow = _command("SaveNow", "save_now")
SampleNow = _command("SampleNow", "sample_now")
Shutdown = _command("Shutdown", "shutdown")  # stop any job (letting it save), then exit the worker process


@dataclass(frozen=True)
class Ping(Command):
    type: ClassVar[str] = "ping"
    nonce: int = 0


# Worker-level events (worker → client), beside the job events of `studio.events`
@dataclass(frozen=True)
class Starting(Event, type="starting"):
    """First line a worker writes, before the slow imports, so the window can say "starting…"."""
    pid: int
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Ready(Event, type="ready"):
    """torch and the engine are imported; jobs start without the import delay from now on."""
    pid: int
    python: str
    torch: str
    device: str
    import_s: float


@dataclass(frozen=True)
class Heartbeat(Event, type="heartbeat"):
    """Sent every second whatever the worker is doing; silence means it hangs or is gone."""
    seq: int
    busy: bool
    job: str | None = None


@dataclass(frozen=True)
class Pong(Event, type="pong"):
    nonce: int


@dataclass(frozen=True)
class JobStarted(Event, type="job_started"):
    """Opens a job's events: all until the matching `job_ended` are this job's (one job at a time, one pipe);
    `request_id` is the request's own, so each panel knows which job is its own."""
    job_id: int
    kind: str
    request_id: int = 0


@dataclass(frozen=True)
class JobEnded(Event, type="job_ended"):
    """Closes a job's events; sent after its Finished or Failed event."""
    job_id: int
    kind: str
    request_id: int = 0


@dataclass(frozen=True)
class WorkerError(Event, type="worker_error"):
    """A problem of the worker rather than of a job: a rejected command, a bad line, a failed import."""
    error: str
    hint: str = ""
    traceback: str = ""
    request_id: int = 0  # the request it refused (a job asked for while another runs), if any


Outgoing = Union[Command, JobRequest]  # what the window (or the CLI) sends: a control command or a job
Message = Union[Command, JobRequest, Event]

COMMAND_TYPES: dict[str, type[Command] | type[JobRequest]] = {
    c.type: c for c in (Pause, Resume, Stop, SaveNow, SampleNow, Shutdown, Ping, *JOB_REQUEST_TYPES)
}
WORKER_EVENT_TYPES: dict[str, type[Event]] = {
    c.type: c for c in (Starting, Ready, Heartbeat, Pong, JobStarted, JobEnded, WorkerError, MixResult)
}
EVENT_MESSAGE_TYPES: dict[str, type[Event]] = {**EVENT_TYPES, **WORKER_EVENT_TYPES}


# Encoding and strict decoding
def encode(message: Message, *, max_line: int = MAX_LINE_BYTES) -> bytes:
    """One JSON line (with its newline). NaN/inf losses are kept: a diverged run must be shown, not hidden."""
    data = {"v": PROTOCOL_VERSION, "type": message.type, **to_data(message)}
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(line) > max_line:
        raise ProtocolError(f"`{message.type}` message is {len(line)} bytes, over the {max_line}-byte line limit")
    return line + b"\n"


def decode_command(line: bytes, *, max_line: int = MAX_LINE_BYTES) -> Outgoing:
    return _decode(line, COMMAND_TYPES, "command", max_line)  # type: ignore[return-value]


def decode_event(line: bytes, *, max_line: int = MAX_LINE_BYTES) -> Event:
    return _decode(line, EVENT_MESSAGE_TYPES, "event", max_line)  # type: ignore[return-value]


def _decode(line: bytes, table: dict[str, type], kind: str, max_line: int) -> Any:
    raw, line = line, line.removesuffix(b"\n").removesuffix(b"\r")
    if len(line) > max_line:
        raise ProtocolError(f"line of {len(line)} bytes is over the {max_line}-byte limit", raw)
    if not line.strip():
        raise ProtocolError("empty line", raw)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", raw) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc.msg} at column {exc.colno}); truncated or garbage line", raw) from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting thousands deep
        raise ProtocolError(f"not a message of this protocol ({type(exc).__name__}: {str(exc)[:80]})", raw) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object, got {type(data).__name__}", raw)
    version = data.pop("v", None)
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(f"protocol version {version!r}, expected {PROTOCOL_VERSION} "
                            "(the worker and the window come from different versions?)", raw)
    name = data.pop("type", None)
    if not isinstance(name, str):
        raise ProtocolError("missing or non-string `type`", raw)
    cls = table.get(name)
    if cls is None:
        raise ProtocolError(f"unknown {kind} type `{name}`; known: {', '.join(sorted(table))}", raw)
    try:
        return from_data(data, cls, where=name)
    except CodecError as exc:
        raise ProtocolError(str(exc), raw) from None


# Reading and writing streams
class LineReader:
    """Never more than `max_line` bytes of a line in memory."""

    def __init__(self, stream: IO[bytes], decode: Callable[..., Any], *, max_line: int = MAX_LINE_BYTES) -> None:
        self._stream = stream
        self._decode = decode
        self._max = max_line

    def read(self) -> Any | None:
        """The next message, None at end of stream, or ProtocolError for one bad line (skipped to its end)."""
        line = self._stream.readline(self._max + 2)  # room for "\r\n"
        if not line:
            return None
        if not line.endswith(b"\n"):
            if len(line) < self._max + 2:
                raise ProtocolError(f"truncated line at end of stream ({len(line)} bytes without a newline)", line)
            while (chunk := self._stream.readline(65536)) and not chunk.endswith(b"\n"):
                pass  # skip the rest of the line
            raise ProtocolError(f"line over the {self._max}-byte limit (skipped)", line)
        return self._decode(line, max_line=self._max)

    def __iter__(self) -> Iterator[Any]:
        """Messages and ProtocolErrors (as values, not raised) until the end of the stream."""
        while True:
            try:
                message = self.read()
            except ProtocolError as exc:
                yield exc
                continue
            if message is None:
                return
            yield message


class LineWriter:
    """Writes messages as lines; thread-safe (the job, heartbeat and command threads all send). After a broken
    pipe writes are dropped, so a worker whose window was killed finishes its shutdown instead of dying."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = False

    def write(self, message: Message) -> bool:
        data = encode(message)
        with self._lock:
            if self.closed:
                return False
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, ConnectionError, ValueError, OSError):
                self.closed = True
                return False
        return True
