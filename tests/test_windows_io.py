"""The core with the calls Windows lacks removed (tests/windows_apis.py): atomic saves, a tiny training with
checkpoint and export, resume, mix, project save/load and caption edits all work; and a file another program
holds open (Windows refuses to rename over it) gives a clear error with the old file intact.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from studio import fileio
from studio.events import Checkpoint, Failed, Finished
from studio.fileio import WriteError, atomic_dir, atomic_write_bytes, atomic_write_text, atomic_write_with
from tests.conftest import tiny_config, train_until


def _leftovers(folder: Path) -> list[str]:
    """Temp files or folders an atomic write left behind (all start with a dot)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_mode_removes_what_windows_lacks_from_the_apps_view(windows_apis, tmp_path):
    from studio.cli import progress
    from studio.worker import client

    assert "os.fchmod" in windows_apis and "signal.SIGKILL" in windows_apis and "fcntl" in windows_apis
    for name in ("fchmod", "statvfs", "getuid", "killpg", "fork"):
        assert not hasattr(fileio.os, name), name
        assert hasattr(os, name) or sys.platform == "win32", name  # the libraries' view is unchanged
    assert not hasattr(client.signal, "SIGKILL") and hasattr(progress.signal, "SIGINT")
    with pytest.raises(ImportError):
        import fcntl  # noqa: F401
    with pytest.raises(ImportError):
        import pwd  # noqa: F401
    with pytest.raises(PermissionError):  # Windows cannot open a folder as a file; our fsync of one must cope
        fileio.os.open(tmp_path, os.O_RDONLY)
    namespace = {"__name__": "studio.probe"}  # a module of ours imported while the mode is on
    exec("import os\nfound = hasattr(os, 'fchmod')\n", namespace)
    assert namespace["found"] is False


def test_outside_the_mode_the_apps_view_is_whole():
    assert hasattr(fileio.os, "replace") and fileio.os.open is os.open
    if sys.platform != "win32":
        assert hasattr(fileio.os, "fchmod")


def test_atomic_saves_work_without_fchmod(windows_apis, tmp_path):
    new = tmp_path / "new.txt"
    atomic_write_text(new, "first")
    assert new.read_text(encoding="utf-8") == "first"
    if os.name != "nt":  # a new file gets 0666 less the umask, as `open` would give it (mkstemp's is 0600)
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask

    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    os.chmod(kept, 0o640)
    atomic_write_bytes(kept, b"new bytes")
    assert kept.read_bytes() == b"new bytes"
    if os.name != "nt":
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640  # the old file's permissions are kept

    atomic_write_with(tmp_path / "lib.bin", lambda p: p.write_bytes(b"from a library"))
    assert (tmp_path / "lib.bin").read_bytes() == b"from a library"

    folder = tmp_path / "checkpoint"
    for n in (1, 2):
        with atomic_dir(folder) as tmp:
            (tmp / "state.json").write_text(str(n), encoding="utf-8")
    assert (folder / "state.json").read_text(encoding="utf-8") == "2"
    assert _leftovers(tmp_path) == []
    assert fileio._free_bytes(tmp_path) > 0  # free space known without os.statvfs


def test_project_save_load_and_caption_edits(windows_apis, tmp_path):
    from studio.config import load_project, save_project
    from studio.dataset.captions import CaptionStore
    from studio.dataset.state import DatasetState, load_state, save_state
    from studio.demo import create_demo_project
    from studio.project import create_project, save_project_as

    project = create_project(tmp_path / "My Cat!", "sd15-character")
    cfg = load_project(project)
    assert cfg.output.name == "my-cat"
    save_project(cfg.with_section("network", rank=8), project)
    assert load_project(project).network.rank == 8
    assert load_project(project.with_name("project.toml.bak")) == cfg  # the previous version kept as backup
    copy = save_project_as(load_project(project), project, tmp_path / "copy" / "project.toml")
    assert load_project(tmp_path / "copy" / "project.toml") == copy

    image = project.parent / "dataset" / "cat.png"
    image.write_bytes(b"not really a png")
    store = CaptionStore()
    assert store.write(image, "cat, sitting").written
    assert store.read(image) == "cat, sitting"
    assert store.write(image, "cat, sitting, red collar").written
    assert image.with_suffix(".txt").read_text(encoding="utf-8") == "cat, sitting, red collar"
    assert store.write(image, None).written and not image.with_suffix(".txt").exists()
    state = DatasetState().with_excluded([image], True)
    save_state(state, project.parent)
    assert image in load_state(project.parent).excluded
    assert _leftovers(project.parent) == []

    demo = create_demo_project(tmp_path / "demo")  # `lora-studio demo` failed at this first save
    assert load_project(demo).model.path == "model"


@pytest.mark.slow
def test_training_checkpoint_export_resume_and_mix(windows_apis, tiny_sd1, image_folder, tmp_path):
    from studio.formats.reader import read_lora
    from studio.mix.export import export_merged
    from studio.mix.recipe import MixEntry, load_sources
    from studio.train.engine import run_training

    out = tmp_path / "out"
    cfg = tiny_config(tiny_sd1, image_folder, out, schedule={"max_steps": 4, "batch_size": 2},
                      output={"save_every_n_steps": 2, "directory": str(out), "name": "test-lora"})
    first = train_until(cfg, 2)
    assert isinstance(first[-1], Finished) and first[-1].stopped and first[-1].step == 2
    checkpoints = [Path(e.path) for e in first if isinstance(e, Checkpoint)]
    assert [c.name for c in checkpoints] == ["checkpoint-0000002"]
    step_export = Path(first[-1].outputs[0])
    assert step_export.name == "test-lora-step0000002.safetensors" and step_export.is_file()

    resumed = list(run_training(cfg, resume_from=checkpoints[0]))
    assert isinstance(resumed[-1], Finished), resumed[-1]
    assert not resumed[-1].stopped and resumed[-1].step == 4
    final = out / "test-lora.safetensors"
    assert Path(resumed[-1].outputs[0]) == final and final.is_file()

    sources = load_sources([MixEntry(str(final), 0.5), MixEntry(str(step_export), 0.5)])
    merged = export_merged(sources, out / "mix.safetensors").path
    assert read_lora(merged).modules.keys() == read_lora(final).modules.keys()
    assert _leftovers(out) == [] and _leftovers(checkpoints[0].parent) == []


# --------------------------------------------------------------------------------------------------
# A file another program holds open


class HeldOpen:
    """Windows' rule for renaming onto a file that another handle has open: refused with a sharing violation.
    Linux allows the rename, so there `os.replace` is patched to apply the rule; on Windows the real lock acts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: dict[Path, object] = {}
        self.refused = 0
        self.pauses: list[float] = []
        monkeypatch.setattr(fileio, "_sleep", self.pauses.append)  # count the retries' pauses, do not wait
        if sys.platform != "win32":
            real = os.replace

            def replace(src, dst, **kwargs):  # type: ignore[no-untyped-def]
                if Path(dst).resolve() in self.held:
                    self.refused += 1
                    error = PermissionError(13, "The process cannot access the file because it is being used by "
                                                "another process", str(dst))
                    error.winerror = 32  # type: ignore[attr-defined]  # ERROR_SHARING_VIOLATION
                    raise error
                return real(src, dst, **kwargs)

            monkeypatch.setattr(os, "replace", replace)

    def open(self, path: Path):  # type: ignore[no-untyped-def]
        handle = open(path, "rb")  # noqa: SIM115 - held like an image viewer holds it
        self.held[path.resolve()] = handle
        return handle

    def close(self, path: Path) -> None:
        self.held.pop(path.resolve()).close()  # type: ignore[attr-defined]


@pytest.fixture
def held_open(monkeypatch):
    lock = HeldOpen(monkeypatch)
    yield lock
    for handle in lock.held.values():
        handle.close()  # type: ignore[attr-defined]


def _lora_file(tmp_path: Path, tiny_sd1: Path, seed: int) -> Path:
    from studio.models.load import load_components
    from tests.lora_maker import random_lora, write_kohya

    class Pipe:  # what random_lora reads from a pipeline
        def __init__(self, components) -> None:  # type: ignore[no-untyped-def]
            self.unet = components.unet
            self.text_encoder = components.text_encoders[0]

    pipe = Pipe(load_components(tiny_sd1))
    return write_kohya(random_lora(pipe, "sd1", seed=seed), tmp_path / f"source-{seed}.safetensors")


def test_an_export_held_open_by_another_program_is_refused_and_the_old_file_kept(held_open, tiny_sd1, tmp_path):
    from studio.mix.export import export_merged
    from studio.mix.recipe import MixEntry, load_sources

    source = _lora_file(tmp_path, tiny_sd1, seed=1)
    out = tmp_path / "exports" / "mix.safetensors"
    export_merged(load_sources([MixEntry(str(source), 1.0)]), out)
    old = out.read_bytes()

    viewer = held_open.open(out)  # a WebUI has the LoRA loaded
    with pytest.raises(WriteError) as info:
        export_merged(load_sources([MixEntry(str(source), 0.25)]), out)
    assert str(info.value) == f"cannot replace {out}: the file is in use by another program"
    assert "close the program" in info.value.hint and "previous file was left as it was" in info.value.hint
    assert out.read_bytes() == old and viewer.read() == old  # the old file intact, for us and for the holder
    assert _leftovers(out.parent) == []  # the new version's temp file is gone
    if sys.platform != "win32":
        assert held_open.refused == len(fileio.REPLACE_RETRY_DELAYS) + 1  # retried, then given up
        assert held_open.pauses == list(fileio.REPLACE_RETRY_DELAYS) and 0.5 <= sum(held_open.pauses) <= 2

    held_open.close(out)  # the program lets go: the same export now goes through
    export_merged(load_sources([MixEntry(str(source), 0.25)]), out)
    assert out.read_bytes() != old


def test_a_lock_that_is_let_go_within_the_retries_is_not_an_error(monkeypatch, tmp_path):
    """A virus scanner opens a new file for a moment: the save waits for it instead of failing."""
    target = tmp_path / "project.toml"
    target.write_text("old", encoding="utf-8")
    tries: list[str] = []
    real = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        tries.append(str(dst))
        if len(tries) < 3:
            error = PermissionError(13, "Access is denied", str(dst))
            error.winerror = 5  # type: ignore[attr-defined]
            raise error
        return real(src, dst)

    pauses: list[float] = []
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(fileio, "_sleep", pauses.append)
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new" and len(tries) == 3
    assert pauses == list(fileio.REPLACE_RETRY_DELAYS[:2])


def test_a_read_only_target_is_said_to_be_read_only_and_not_retried(monkeypatch, tmp_path):
    """On Windows a rename onto a read-only file is refused like one onto an open file (error 5); the message
    must not send the user looking for a program that has it open."""
    target = tmp_path / "lora.safetensors"
    target.write_bytes(b"old")
    pauses: list[float] = []

    def replace(src, dst):  # type: ignore[no-untyped-def]
        error = PermissionError(13, "Access is denied", str(dst))
        error.winerror = 5  # type: ignore[attr-defined]
        raise error

    def replace_after_another_program_set_read_only(src, dst):  # type: ignore[no-untyped-def]
        os.chmod(dst, stat.S_IREAD)  # made read-only while we were writing
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_another_program_set_read_only)
    monkeypatch.setattr(fileio, "_sleep", pauses.append)
    try:
        with pytest.raises(WriteError, match="the file is read-only"):
            atomic_write_bytes(target, b"new")
        assert pauses == [] and target.read_bytes() == b"old" and _leftovers(tmp_path) == []
    finally:
        os.chmod(target, stat.S_IREAD | stat.S_IWRITE)


def test_a_read_only_file_is_not_replaced_on_any_system(tmp_path):
    target = tmp_path / "project.toml"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, stat.S_IREAD)
    try:
        with pytest.raises(WriteError) as info:
            atomic_write_text(target, "new")
        assert str(info.value) == f"cannot replace {target}: the file is read-only"
        assert target.read_text(encoding="utf-8") == "old" and _leftovers(tmp_path) == []
    finally:
        os.chmod(target, stat.S_IREAD | stat.S_IWRITE)


def test_a_linux_permission_error_on_rename_is_not_retried_nor_called_in_use(monkeypatch, tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    pauses: list[float] = []

    def replace(src, dst):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied", str(dst))  # no winerror: a sticky folder, say

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(fileio, "_sleep", pauses.append)
    with pytest.raises(WriteError, match="permission denied"):
        atomic_write_text(target, "new")
    assert pauses == [] and target.read_text(encoding="utf-8") == "old"


def test_a_checkpoint_folder_that_cannot_be_put_in_place_keeps_the_old_one(monkeypatch, tmp_path):
    folder = tmp_path / "checkpoint-0000002"
    with atomic_dir(folder) as tmp:
        (tmp / "state.json").write_text("old", encoding="utf-8")
    real = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst) == folder and Path(src).name.endswith(".tmp"):  # the new folder cannot take the name
            error = PermissionError(13, "Access is denied", str(dst))
            error.winerror = 32  # type: ignore[attr-defined]
            raise error
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(fileio, "_sleep", lambda s: None)
    with pytest.raises(WriteError):
        with atomic_dir(folder) as tmp:
            (tmp / "state.json").write_text("new", encoding="utf-8")
    assert (folder / "state.json").read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path) == []


def test_a_path_too_long_is_said_in_words(tmp_path):
    with pytest.raises(WriteError, match="the file name or the path is too long") as info:
        atomic_write_text(tmp_path / ("x" * 300 + ".toml"), "a")
    assert "260 characters" in info.value.hint
    windows = OSError(2, "The filename or extension is too long")
    windows.winerror = 206  # type: ignore[attr-defined]
    assert "too long" in str(fileio._explain(tmp_path / "a", windows))


@pytest.mark.slow
def test_training_whose_export_is_held_open_fails_clearly_and_keeps_the_old_export(
        held_open, tiny_sd1, image_folder, tmp_path):
    from studio.train.engine import run_training

    out = tmp_path / "out"
    cfg = tiny_config(tiny_sd1, image_folder, out, schedule={"max_steps": 1, "batch_size": 2})
    assert isinstance(list(run_training(cfg))[-1], Finished)
    export = out / "test-lora.safetensors"
    old = export.read_bytes()
    held_open.open(export)
    events = list(run_training(cfg.with_section("schedule", seed=7)))
    assert isinstance(events[-1], Failed), events[-1]
    assert events[-1].error == f"cannot replace {export}: the file is in use by another program"
    assert export.read_bytes() == old and _leftovers(out) == []


@pytest.mark.slow
def test_the_demo_command_trains_and_exports(windows_apis, tmp_path, capsys):
    """`lora-studio demo` stopped at its first save on Windows; here it builds, trains and exports."""
    from studio.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "2", "--quiet"]) == 0
    exported = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported == (tmp_path / "demo" / "demo-lora.safetensors").resolve() and exported.stat().st_size > 0


def test_a_file_system_without_permissions_still_saves(monkeypatch, tmp_path):
    """chmod fails with EPERM on FAT/exFAT mounted on Linux and on some network shares; the save goes on."""
    def no_modes(path, mode):  # type: ignore[no-untyped-def]
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "chmod", no_modes)
    atomic_write_text(tmp_path / "a.txt", "saved")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "saved" and _leftovers(tmp_path) == []
