"""Every text file the app reads, as other editors and tools save it: with a UTF-8 BOM, with CRLF line ends
(Windows' Notepad), both, and with a NUL byte in it.

A BOM or CRLF must read exactly as the clean file does. A NUL byte must never escape as a library error: the
reader either reads the file as it would without the byte (captions drop control characters) or refuses it
with one of our messages naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.errors import StudioError
from tests.faults.hostile_inputs import clear_message

FAULT = "text files: BOM / CRLF / NUL"


@dataclass(frozen=True)
class TextReader:
    """One kind of text file: where it goes under a folder, its clean text, and how the app reads it."""

    name: str
    relative: str
    text: str
    read: Callable[[Path], object]  # the folder → what the app made of the file


def _project(root: Path) -> object:
    from studio.config import load_project

    return load_project(root / "project.toml")


def _dataset_state(root: Path) -> object:
    from studio.dataset.state import load_state

    return load_state(root)


def _caption(root: Path) -> object:
    from studio.dataset.captions import read_sidecar

    return read_sidecar(root / "cat.txt").text


def _folder_file(root: Path) -> object:
    from studio.config import DatasetConfig
    from studio.train.folders import dataset_defaults, folder_settings

    return folder_settings(root, dataset_defaults(DatasetConfig(), 1))


def _model_config(root: Path) -> object:
    from studio.models.entry_check import read_config

    return read_config(root / "config.json", "unet")


def _events(root: Path) -> object:
    from studio.run_folder import read_events

    return read_events(root / "events.jsonl")


def _app_settings(root: Path) -> object:
    pytest.importorskip("PySide6")
    from ui.settings import load_settings

    return load_settings(root / "settings.toml")


READERS = (
    TextReader("project file", "project.toml",
               '# my project\n[network]\nrank = 16\nalpha = 8.0\n[output]\nname = "cat-lora"\n', _project),
    TextReader("dataset state", "dataset.json",
               json.dumps({"version": 1, "excluded": ["data/a.png"], "repeats": {"data": 3}}, indent=1) + "\n",
               _dataset_state),
    TextReader("caption", "cat.txt", "1girl, smile\nblue sky\n", _caption),
    TextReader("folder settings", "folder.toml", "# close-ups\nrepeats = 4\nkeep_tokens = 1\n", _folder_file),
    TextReader("model config", "config.json", json.dumps({"sample_size": 64, "in_channels": 4}, indent=1), _model_config),
    TextReader("run event log", "events.jsonl",
               '{"type": "started", "run_dir": "r", "total_steps": 4, "time": 1.0}\n'
               '{"type": "progress", "step": 1, "total": 4, "epoch": 0, "loss": 0.5, "smoothed_loss": 0.5, "lr": 0.0001,'
               ' "it_per_s": 1.0, "time": 1.0}\n', _events),
    TextReader("app settings", "settings.toml", '[general]\ntheme = "dark"\n', _app_settings),
)

VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "bom+crlf": lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
    "cr only (old Mac)": lambda b: b.replace(b"\n", b"\r"),
}


def _write(root: Path, reader: TextReader, data: bytes) -> None:
    path = root / reader.relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _read(root: Path, reader: TextReader) -> tuple[object, str]:
    """(value, "") or (None, our message)."""
    try:
        return reader.read(root), ""
    except StudioError as exc:
        return None, str(exc)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_bom_and_line_ends_read_as_the_clean_file(tmp_path, reader, variant, ledger):
    _write(tmp_path, reader, reader.text.encode("utf-8"))  # the clean file first, in the same place
    expected, error = _read(tmp_path, reader)
    assert not error, error
    _write(tmp_path, reader, VARIANTS[variant](reader.text.encode("utf-8")))
    got, message = _read(tmp_path, reader)
    ok = not message and got == expected
    if variant == "cr only (old Mac)" and reader.relative.endswith((".toml", ".json", ".jsonl")):
        ok = ok or (got is None and clear_message(message))  # a bare CR is no line end there: refused is fine
    ledger.record(FAULT, "clear" if ok else "crash", f"{reader.name} {variant}: {message or got!r}")
    assert ok, (reader.name, variant, message, got, expected)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("reader", READERS, ids=[r.name for r in READERS])
def test_a_nul_byte_is_read_past_or_refused_in_our_words(tmp_path, reader, where, ledger):
    data = reader.text.encode("utf-8")
    at = {"start": 0, "middle": len(data) // 2, "end": len(data)}[where]
    _write(tmp_path, reader, data[:at] + b"\x00" + data[at:])
    try:
        value = reader.read(tmp_path)
    except StudioError as exc:
        message = str(exc)
        ok = clear_message(message) and (reader.relative in message or "\x00" not in message)
        ledger.record(FAULT, "clear" if ok else "unclear", f"{reader.name} NUL at {where}: {message}")
        assert ok, message
        return
    except Exception as exc:  # noqa: BLE001 - the point of the test
        ledger.record(FAULT, "crash", f"{reader.name} NUL at {where}: {type(exc).__name__}: {exc}")
        raise AssertionError(f"{reader.name}: a NUL byte escaped as {type(exc).__name__}: {exc}") from None
    assert "\x00" not in repr(value), f"{reader.name}: the NUL byte got into what was read: {value!r}"
    ledger.record(FAULT, "clear", f"{reader.name} NUL at {where}: read past")
