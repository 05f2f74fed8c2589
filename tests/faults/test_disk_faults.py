"""A full or read-only disk while saving project files, captions, dataset state, checkpoints and exports.

The disk is a real tmpfs of a few hundred kB (mounted for the test; root only), filled to leave a chosen number
of bytes free, so the write fails at a different point each time: creating the temporary, writing it, the
backup, the rename. A second variant, for machines where mounting is not allowed, runs the writers in a child
with `RLIMIT_FSIZE` (each write past the limit fails with EFBIG).

Promise: each failed save raises `WriteError` whose message names the file and says why ("the disk is full",
"the disk is read-only"); the previous file is intact and loads; no temporary is left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.errors import StudioError
from studio.fileio import WriteError
from studio.run_folder import checkpoint_dir, last_checkpoint

ROOT = Path(__file__).resolve().parents[2]
FREE_LEVELS = (0, 1024, 4096, 8192, 12288, 16384, 24576, 65536, 131072, 262144)  # bytes left free


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")) and p.name.startswith(".")]


def _judge(ledger, fault_class: str, attempt, check_intact) -> str:
    """Run one save on a faulty disk; record and return 'ok', 'error' or a problem sentence."""
    try:
        attempt()
        result = "ok"
    except WriteError as exc:
        result = "error"
        message = str(exc)
        if not any(w in message for w in ("the disk is full", "read-only", "larger than")):
            result = f"unclear message: {message}"
    except StudioError as exc:
        result = f"not a WriteError: {type(exc).__name__}: {exc}"
    except BaseException as exc:  # noqa: BLE001
        result = f"crash: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        check_intact()
        lost = ""
    except BaseException as exc:  # noqa: BLE001
        lost = f"previous file damaged: {type(exc).__name__}: {str(exc)[:200]}"
    if lost:
        ledger.record(fault_class, "lost", lost)
        return lost
    if result in ("ok", "error"):
        ledger.record(fault_class, "recovered" if result == "error" else "clear")
        return result
    ledger.record(fault_class, "crash", result)
    return result


# --------------------------------------------------------------------------------------------------
# writers under test, each with a way to make version n and to check what is on disk


def _cfg(n: int):
    from studio.config import ProjectConfig

    cfg = ProjectConfig().with_section("output", name=f"version-{n}", trigger_phrase="x" * (20_000 + n))
    return cfg.with_section("sampling", prompts=tuple(f"prompt {i} " * 20 for i in range(n + 1)))


def _lora(n: int):
    from studio.formats.lora_file import LoraFile, LoraModule

    g = torch.Generator().manual_seed(n)
    lf = LoraFile(family="sd1", metadata={"version": str(n)})
    for i in range(8):
        name = f"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_{'qkv'[i % 3]}{i}"
        lf.modules[name] = LoraModule(name=name, down=torch.randn(4, 320, generator=g),
                                      up=torch.randn(320, 4, generator=g), alpha=2.0)
    return lf


class Target:
    """One kind of file: `save(n)` writes version n, `check(n)` asserts version n is what the disk holds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder


class ProjectFile(Target):
    name = "project files"

    def save(self, n: int) -> None:
        from studio.config import save_project

        save_project(_cfg(n), self.folder / "project.toml")

    def check(self, n: int) -> None:
        from studio.config import load_project

        assert load_project(self.folder / "project.toml").output.name == f"version-{n}"
        bak = self.folder / "project.toml.bak"
        if bak.exists():  # the backup is a complete, loadable older version
            assert load_project(bak).output.name.startswith("version-")


class Export(Target):
    name = "exports (LoRA files)"

    def save(self, n: int) -> None:
        from studio.formats.kohya import save_lora_file

        save_lora_file(_lora(n), self.folder / "lora.safetensors", dtype="fp32")

    def check(self, n: int) -> None:
        from safetensors import safe_open

        from studio.formats.reader import read_lora

        with safe_open(str(self.folder / "lora.safetensors"), "pt") as fh:
            assert fh.metadata()["version"] == str(n)
        assert len(read_lora(self.folder / "lora.safetensors").modules) == 8


class Checkpoints(Target):
    name = "checkpoints"

    def save(self, n: int) -> None:
        from studio.train import checkpoint as ckpt
        from tests.faults.test_damaged_checkpoints import _training_state

        _, opt, sched, gen, _ = _training_state(n)
        adapters = {"lora_unet": {f"m{i}.lora_A.weight": torch.randn(4, 320) for i in range(8)}}
        position = ckpt.LoopPosition(step=n, epoch=0, index=0, family="sd1", rank=4, train_text_encoder=False)
        ckpt.save_checkpoint(checkpoint_dir(self.folder, n), adapters=adapters, optimizer=opt,
                             lr_scheduler=sched, noise_gen=gen, position=position, keep=2)

    def check(self, n: int) -> None:
        from studio.train import checkpoint as ckpt
        from tests.faults.test_damaged_checkpoints import _training_state

        latest = (last_checkpoint(self.folder) or (0, None))[1]
        assert latest is not None and ckpt.read_position(latest).step == n
        assert len(ckpt.load_adapters(latest)["lora_unet"]) == 8
        _, opt, sched, gen, _ = _training_state(0)
        ckpt.restore_training_state(latest, optimizer=opt, lr_scheduler=sched, noise_gen=gen)


class Captions(Target):
    name = "captions"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        from studio.dataset.captions import CaptionStore

        self.store = CaptionStore()
        self.image = folder / "img.png"

    def save(self, n: int) -> None:
        result = self.store.write(self.image, f"caption version {n}, " + "tag, " * 2000)
        assert result.written

    def check(self, n: int) -> None:
        text = (self.folder / "img.txt").read_text(encoding="utf-8")
        assert text == f"caption version {n}, " + "tag, " * 2000


class DatasetStateFile(Target):
    name = "dataset state (dataset.json)"

    def save(self, n: int) -> None:
        from studio.dataset.state import DatasetState, save_state

        excluded = frozenset(self.folder / f"img{i}-v{n}.png" for i in range(300))
        save_state(DatasetState(excluded=excluded), self.folder)

    def check(self, n: int) -> None:
        from studio.dataset.state import load_state

        state = load_state(self.folder)
        assert len(state.excluded) == 300 and all(p.name.endswith(f"-v{n}.png") for p in state.excluded)


TARGETS = [ProjectFile, Export, Checkpoints, Captions, DatasetStateFile]


@pytest.mark.parametrize("target_cls", TARGETS, ids=lambda c: c.name)
def test_full_disk_leaves_the_previous_file_and_says_so(ledger, small_disk, target_cls):
    disk = small_disk(size=1 << 20)
    target = target_cls(disk.path)
    target.save(1)
    target.save(2)
    version, problems, failures = 2, [], 0
    for i, leave in enumerate(FREE_LEVELS):
        disk.fill(leave)
        attempt_n = 3 + i
        result = _judge(ledger, f"disk full: {target.name}", lambda: target.save(attempt_n),
                        lambda: None)
        disk.free()
        if result == "ok":
            version = attempt_n
        elif result == "error":
            failures += 1
        else:
            problems.append(f"{leave} bytes free: {result}")
        try:
            target.check(version)
        except BaseException as exc:  # noqa: BLE001
            ledger.record(f"disk full: {target.name}", "lost", str(exc))
            problems.append(f"{leave} bytes free: version {version} no longer intact: {exc!r}")
        left = leftovers(disk.path)
        if left:
            problems.append(f"{leave} bytes free: temporaries left behind: {left}")
    assert not problems, "\n".join(problems)
    assert failures >= 3, "the disk never filled up: the test did not test anything"


@pytest.mark.parametrize("target_cls", TARGETS, ids=lambda c: c.name)
def test_read_only_disk_leaves_the_previous_file_and_says_so(ledger, small_disk, target_cls):
    disk = small_disk(size=1 << 20)
    target = target_cls(disk.path)
    target.save(1)
    disk.read_only()
    try:
        with pytest.raises(WriteError, match="read-only") as info:
            target.save(2)
        assert str(disk.path) in str(info.value)
        target.check(1)
        ledger.record(f"read-only disk: {target.name}", "recovered")
    finally:
        disk.read_only(False)
    target.save(3)  # and once writable again, saving works
    target.check(3)
    assert not leftovers(disk.path)


def test_deleting_a_caption_on_a_read_only_disk(ledger, small_disk):
    """Undoing the first caption of an image deletes its sidecar; on a read-only disk that must fail clearly."""
    from studio.dataset.captions import CaptionStore

    disk = small_disk(size=1 << 20)
    store = CaptionStore()
    image = disk.path / "a.png"
    store.write(image, "first")
    disk.read_only()
    try:
        try:
            store.write(image, None)
            result = "deleted on a read-only disk?"
        except StudioError as exc:
            result = "" if "read-only" in str(exc) else f"unclear: {exc}"
        except BaseException as exc:  # noqa: BLE001
            result = f"{type(exc).__name__}: {exc}"
        intact = (disk.path / "a.txt").read_text() == "first"
        ledger.record("read-only disk: captions", "lost" if not intact else "crash" if result else "recovered",
                      result)
        assert intact and not result, result
    finally:
        disk.read_only(False)


def test_a_batch_caption_edit_that_hits_a_full_disk_can_be_undone(ledger, small_disk):
    """Half of a batch edit is written when the disk fills up: the written half must still be undoable."""
    from studio.dataset.captions import CaptionStore
    from studio.dataset.edits import PartialEditError, apply_edit, plan_edit

    disk = small_disk(size=1 << 20)
    store = CaptionStore()
    images = [disk.path / f"img{i:02d}.png" for i in range(12)]
    for image in images:
        store.write(image, "old")
    edit = plan_edit("make captions long", {image: ("old", "new " * 3000) for image in images})
    disk.fill(6 * 4096 * 4)  # room for a few of the 12 KB captions, not all
    try:
        apply_edit(store, edit)
        raised = None
    except PartialEditError as exc:
        raised = exc
    finally:
        disk.free()
    texts = [(image.with_suffix(".txt")).read_text().strip() for image in images]
    assert all(t in ("old", ("new " * 3000).strip()) for t in texts), "a caption was torn"
    changed = sum(t != "old" for t in texts)
    assert raised is not None and 0 < changed < len(images), (raised, changed)
    apply_edit(store, edit.only(raised.result.written), undo=True)  # what the undo stack keeps
    texts = [(image.with_suffix(".txt")).read_text().strip() for image in images]
    ok = all(t == "old" for t in texts)
    ledger.record("disk full: caption batch edit + undo", "recovered" if ok else "lost",
                  f"{sum(t != 'old' for t in texts)} captions could not be undone")
    assert ok, f"{sum(t != 'old' for t in texts)} of the written captions are not in the undo history"


RLIMIT_CHILD = r"""
import json, resource, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from studio.errors import StudioError
from tests.faults.test_disk_faults import TARGETS
folder = Path(sys.argv[1])
out = {}
for cls in TARGETS:
    sub = folder / cls.__name__
    sub.mkdir()
    target = cls(sub)
    target.save(1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
    try:
        target.save(2)
        result = "ok"
    except StudioError as exc:
        result = f"error:{type(exc).__name__}:{exc}"
    except BaseException as exc:
        result = f"crash:{type(exc).__name__}:{exc}"
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    try:
        target.check(1)
        intact = "yes"
    except BaseException as exc:
        intact = repr(exc)
    left = [str(p) for p in sub.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    out[cls.name] = {"result": result, "intact": intact, "left": left}
print(json.dumps(out))
"""


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_file_size_limit_in_a_child_process(ledger, tmp_path):
    """Without root: RLIMIT_FSIZE makes every write past 2 kB fail (EFBIG), a failing write at any size."""
    proc = subprocess.run([sys.executable, "-c", RLIMIT_CHILD, str(tmp_path), str(ROOT)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = []
    for name, r in results.items():
        fault_class = f"write fails (RLIMIT_FSIZE): {name}"
        if r["intact"] != "yes":
            ledger.record(fault_class, "lost", r["intact"])
            problems.append(f"{name}: previous version damaged: {r['intact']}")
        elif not r["result"].startswith("error:WriteError:") or "larger than" not in r["result"]:
            ledger.record(fault_class, "crash", r["result"])
            problems.append(f"{name}: {r['result'][:300]}")
        elif r["left"]:
            ledger.record(fault_class, "lost", str(r["left"]))
            problems.append(f"{name}: temporaries left: {r['left']}")
        else:
            ledger.record(fault_class, "recovered")
    assert not problems, "\n".join(problems)
