"""Project files that are corrupt, truncated or from a newer version: a clear ConfigError naming the file, nothing
silently reset, the last good backup never overwritten. Also the dataset state file (`dataset.json`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from studio.config import PROJECT_FORMAT_VERSION, ProjectConfig, dumps_project, load_project, save_project
from studio.errors import ConfigError, StudioError


def _cfg(name: str) -> ProjectConfig:
    cfg = ProjectConfig().with_section("output", name=name, trigger_phrase="sks")
    return cfg.with_section("network", rank=8, alpha=4.0).with_section("dataset", folders=("images",))


def corruptions(good: bytes, seed: int = 3) -> list[tuple[str, bytes, str]]:
    """(case id, bytes, expect): expect "error" (must not load) or "error-or-warning" (a cut that may parse)."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes, str]] = []

    def add(name: str, blob: bytes, expect: str = "error") -> None:
        out.append((f"{len(out):03d}-{name}", blob, expect))

    for cut in sorted(rng.sample(range(1, len(good) - 1), 24)):
        add(f"truncated-at-{cut}", good[:cut], "error-or-warning")
    for cut in (len(good) // 2, len(good) - 1):
        add(f"truncated-at-{cut}", good[:cut], "error-or-warning")
    for i in range(16):
        blob = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            blob[rng.randrange(len(blob))] = rng.choice(b"\x00\xff[]=\"'\n#{}")
        add(f"flipped-{i}", bytes(blob), "any")
    for name in ("empty", "bom-only"):  # no settings at all: every one is its default, as for an empty text
        add(name, b"\xef\xbb\xbf" if name == "bom-only" else b"", "error-or-warning")
    for name, blob in (("nul-bytes", b"\x00" * 512), ("binary", bytes(rng.randbytes(2048))),
                       ("utf16", good.decode().encode("utf-16")), ("latin1", b"[output]\nname = \"caf\xe9\"\n"),
                       ("json", json.dumps({"output": {"name": "x"}}).encode()),
                       ("html", b"<html><body>404 Not Found</body></html>"),
                       ("zeros-after-crash", good[: len(good) // 3] + b"\x00" * 4096)):
        add(name, blob)
    for version in (PROJECT_FORMAT_VERSION + 1, 99, 2**62, -1 if False else 10**6):
        add(f"newer-version-{version}", good.replace(b"format_version = 1", f"format_version = {version}".encode()))
    add("version-is-a-string", good.replace(b"format_version = 1", b'format_version = "2"'))
    add("version-huge-int", good.replace(b"format_version = 1", b"format_version = " + b"9" * 5000))
    add("deeply-nested", b"format_version = 1\nx = " + b"[" * 50_000 + b"]" * 50_000 + b"\n")
    add("deeply-nested-tables", b"format_version = 1\nx = " + b"{a = " * 5_000 + b"1" + b"}" * 5_000 + b"\n")
    add("duplicate-table", good + b"\n[output]\nname = \"again\"\n")
    add("duplicate-key", good.replace(b"[network]\n", b"[network]\nrank = 4\n"))
    add("wrong-type", good.replace(b"rank = 8", b'rank = "eight"'))
    add("out-of-range", good.replace(b"rank = 8", b"rank = 100000"))
    add("nan-rate", good.replace(b"[optimizer]\n", b"[optimizer]\nunet_lr = nan\n", 1).replace(
        b"unet_lr = 0.0001\n", b"", 1))
    add("inf-alpha", good.replace(b"alpha = 4.0", b"alpha = inf"))
    add("typo-section", good.replace(b"[network]", b"[netwrok]"))
    add("typo-key", good.replace(b"rank = 8", b"rnak = 8"))
    add("preset-path-traversal", b'format_version = 1\npreset = "../../../../etc/passwd"\n')
    add("section-not-a-table", b"format_version = 1\noutput = 5\n")
    return out


def backup_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".bak")


def _setup(folder: Path) -> tuple[Path, bytes]:
    project = folder / "project.toml"
    save_project(_cfg("first"), project)
    save_project(_cfg("second"), project)  # project.toml.bak now holds "first"
    assert load_project(backup_path(project)).output.name == "first"
    return project, project.read_bytes()


def test_corrupt_project_files_give_a_clear_error(ledger, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    project, good = _setup(folder)
    cases = corruptions(good)
    assert len(cases) >= 50
    broken = []
    for case_id, blob, expect in cases:
        project.write_bytes(blob)
        problem, loaded = "", False
        try:
            load_project(project)
            loaded = True
            if expect == "error":
                problem = "a damaged file was accepted"
        except StudioError as exc:
            if not str(exc):
                problem = "empty message"
        except BaseException as exc:  # noqa: BLE001
            problem = f"load_project raised {type(exc).__name__}: {str(exc)[:200]}"
        if project.read_bytes() != blob:
            problem += " the damaged file was changed"
        ledger.record("project files: corrupt, truncated, newer", "crash" if problem else "clear",
                      f"{case_id}: {problem or ('loaded' if loaded else 'refused')}")
        if problem:
            broken.append(f"{case_id}: {problem}")
    assert not broken, f"{len(broken)} of {len(cases)}:\n" + "\n".join(broken)


def test_a_newer_version_is_not_opened_and_not_overwritten(tmp_path):
    project, good = _setup(tmp_path)
    newer = good.replace(b"format_version = 1", b"format_version = 2") + b"\n[future]\nthing = 1\n"
    project.write_bytes(newer)
    with pytest.raises(ConfigError, match="newer LoRA Studio"):
        load_project(project)
    assert project.read_bytes() == newer


def test_saving_over_a_damaged_file_keeps_the_good_backup(ledger, tmp_path):
    """The user could not open the project and saved new settings over it: the one good backup must survive."""
    project, _ = _setup(tmp_path)
    project.write_bytes(b"\x00\x00 damaged \x00")
    save_project(_cfg("third"), project)
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("project.toml.") and p.is_file()]
    names = []
    for b in backups:
        try:
            names.append(load_project(b).output.name)
        except StudioError:
            pass
    ok = "first" in names
    ledger.record("project files: save over a damaged file", "recovered" if ok else "lost",
                  f"loadable backups after the save: {names}")
    assert ok, f"the good backup was replaced by the damaged file; loadable backups: {names}"


@pytest.mark.parametrize("where", ["missing", "a folder"])
def test_a_project_path_that_is_not_a_file(tmp_path, where):
    project = tmp_path / "project.toml"
    if where == "a folder":
        project.mkdir()
    with pytest.raises(ConfigError) as info:
        load_project(project)
    assert "project.toml" in str(info.value)


def dataset_state_corruptions(seed: int = 9) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    good = json.dumps({"version": 1, "excluded": ["a.png"], "crops": {"b.png": [0, 0, 1, 1]},
                       "focus": {}, "repeats": {}}).encode()
    out = [(f"truncated-{n}", good[:n]) for n in sorted(rng.sample(range(0, len(good)), 10))]
    out += [("version-2", good.replace(b'"version": 1', b'"version": 2')),
            ("not-object", b"[]"), ("binary", rng.randbytes(300)), ("nested", b"[" * 100_000 + b"]" * 100_000),
            ("huge-int", b'{"version": ' + b"1" * 5000 + b"}"), ("crop-strings", good.replace(b"[0, 0, 1, 1]",
                                                                                            b'["a", "b"]')),
            ("crop-nan", good.replace(b"[0, 0, 1, 1]", b"[NaN, 0, 1, 1]")),
            ("excluded-object", good.replace(b'["a.png"]', b'{"a": 1}')),
            ("repeats-negative", good.replace(b'"repeats": {}', b'"repeats": {"x": -5}')),
            ("utf16", good.decode().encode("utf-16"))]
    return out


def test_corrupt_dataset_state_gives_a_clear_error(ledger, tmp_path):
    from studio.dataset.state import load_state, state_path

    broken = []
    cases = dataset_state_corruptions()
    for name, blob in cases:
        state_path(tmp_path).write_bytes(blob)
        try:
            load_state(tmp_path)
            problem = "" if name in ("crop-nan",) else "accepted"
        except StudioError as exc:
            problem = "" if "dataset.json" in str(exc) else f"unclear: {exc}"
        except BaseException as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        ledger.record("dataset state file: corrupt", "crash" if problem else "clear", f"{name}: {problem}")
        if problem:
            broken.append(f"{name}: {problem}")
        assert state_path(tmp_path).read_bytes() == blob  # never reset behind the user's back
    assert not broken, "\n".join(broken)


def test_dumps_is_what_save_writes(tmp_path):
    """(guards the corruptions above: they are made from what save_project really writes)"""
    project, good = _setup(tmp_path)
    assert good == dumps_project(_cfg("second")).encode()


def test_settings_text_sent_to_the_worker_is_read_as_strictly(ledger, tmp_path):
    """The window sends the form's settings as TOML text (`Start.config_toml`): the same corruptions there."""
    from studio.config import loads_project

    _, good = _setup(tmp_path)
    problems = []
    for case_id, blob, expect in corruptions(good):
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            continue  # the protocol carries text: undecodable bytes never reach the worker as TOML
        try:
            loads_project(text, "the training settings")
            # empty text is all defaults, as for load_project; a BOM
            # alone is empty text too, as Notepad saves an empty file
            problem = "" if expect != "error" or case_id.endswith(("-empty", "-bom-only")) else "accepted"
        except StudioError as exc:
            problem = "" if "the training settings" in str(exc) or "preset" in str(exc) else f"unclear: {exc}"
        except BaseException as exc:  # noqa: BLE001
            problem = f"{type(exc).__name__}: {str(exc)[:150]}"
        ledger.record("project files: settings text sent to the worker", "crash" if problem else "clear",
                      f"{case_id}: {problem}")
        if problem:
            problems.append(f"{case_id}: {problem}")
    assert not problems, "\n".join(problems)
