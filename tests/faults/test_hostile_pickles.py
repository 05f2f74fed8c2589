"""Malicious pickles in `.ckpt`/`.pt`/`.pth`/`.bin` (and renamed ones): refused with a clear message, no code run.

Every payload, if it ran, would create the `marker` file; the fixture asserts it does not exist. The files go
through every entry point that can meet a pickle: the safe loader (base models), the LoRA reader, and the
engine's resume (a shared run folder whose `optimizer.pt` was swapped).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from studio.errors import StudioError, UnsafeFileError


class _Reduce:
    """Pickles as `func(*args)`: the classic code-execution gadget."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: Path) -> list[tuple[str, object]]:
    import builtins
    import operator
    import subprocess

    touch = f"open({str(marker)!r}, 'w').write('x')"
    return [
        ("os.system", _Reduce(os.system, f"touch {marker}")),
        ("posix.system", _Reduce(__import__("posix").system, f"touch {marker}")),
        ("builtins.exec", _Reduce(builtins.exec, touch)),
        ("builtins.eval", _Reduce(builtins.eval, touch)),
        ("builtins.open", _Reduce(builtins.open, str(marker), "w")),
        ("subprocess.Popen", _Reduce(subprocess.Popen, ["touch", str(marker)])),
        ("subprocess.call", _Reduce(subprocess.call, ["touch", str(marker)])),
        ("operator.methodcaller", _Reduce(operator.methodcaller("touch"), Path(marker))),
        ("pathlib.touch", _Reduce(Path.touch, Path(marker))),
        ("shutil.copy", _Reduce(shutil.copyfile, os.devnull, str(marker))),
    ]


def raw_pickles(marker: Path) -> list[tuple[str, bytes]]:
    """Hand-written opcode streams for gadgets `pickle.dumps` cannot express (calls whose callee is computed).

    Each one creates the marker under plain `pickle.loads` (checked by `test_the_gadgets_are_real`)."""
    cmd = f"touch {marker}".encode()
    touch = f"open({str(marker)!r}, 'w').write('x')".encode()
    return [
        # getattr(__import__("os"), "system")("touch …")
        ("getattr-chain", b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + cmd + b"\ntR."),
        # exec(compile("…", "x", "exec"))
        ("compile+exec", b"cbuiltins\nexec\n(cbuiltins\ncompile\n(V" + touch + b"\nVx\nVexec\ntRtR."),
        # STACK_GLOBAL with protocol 4 framing: posix.system("touch …")
        ("stack-global", b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R."),
        # INST opcode (protocol 0): os.system via instantiate
        ("inst", b"(V" + cmd + b"\nios\nsystem\n."),
        # OBJ opcode: os.system as a 'class'
        ("obj", b"(cos\nsystem\nV" + cmd + b"\no."),
        # torch's own rebuild helper calling os.system (torch.Tensor as the "type")
        ("rebuild-from-type", b"ctorch._tensor\n_rebuild_from_type_v2\n(cos\nsystem\nctorch\nTensor\n(V" + cmd
         + b"\nt}tR."),
    ]


def _wrap(kind: str, obj: object) -> object:
    if kind == "bare":
        return obj
    if kind == "in-state-dict":
        return {"state_dict": {"model.diffusion_model.x.weight": torch.zeros(2), "evil": obj}}
    if kind == "beside-tensors":
        return {"a": torch.ones(3), "b": [torch.zeros(1), {"c": obj}]}
    raise ValueError(kind)


def files(folder: Path, marker: Path) -> list[tuple[str, Path]]:
    """(case id, path) of every hostile pickle variant, written to `folder`."""
    out = []
    n = 0
    for name, payload in payloads(marker):
        for kind in ("bare", "in-state-dict", "beside-tensors"):
            obj = _wrap(kind, payload)
            # torch's zip format, torch's legacy format, and raw pickles of several protocols
            blobs = {}
            buf = io.BytesIO()
            torch.save(obj, buf)
            blobs["zip"] = buf.getvalue()
            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=False)
            blobs["legacy"] = buf.getvalue()
            for proto in (0, 2, 5):
                blobs[f"pickle{proto}"] = pickle.dumps(obj, protocol=proto)
            for fmt, blob in blobs.items():
                suffix = (".ckpt", ".pt", ".pth", ".bin", "", ".safetensors", ".model")[n % 7]
                n += 1
                path = folder / f"{name}-{kind}-{fmt}{suffix}"
                path.write_bytes(blob)
                out.append((f"{name}/{kind}/{fmt}{suffix or '(no suffix)'}", path))
    for name, blob in raw_pickles(marker):
        for suffix in (".ckpt", ".pt", ".bin", ""):
            path = folder / f"raw-{name}{suffix}"
            path.write_bytes(blob)
            out.append((f"raw/{name}{suffix or '(no suffix)'}", path))
            # the same stream as data.pkl inside torch's zip layout
            zpath = folder / f"zip-{name}{suffix}"
            with zipfile.ZipFile(zpath, "w") as zf:
                zf.writestr("archive/data.pkl", blob)
                zf.writestr("archive/version", "3\n")
                zf.writestr("archive/byteorder", "little")
            out.append((f"zip/{name}{suffix or '(no suffix)'}", zpath))
    # a zip that hides the payload in a second pickle the loader never asked for, and a zip of random junk
    evil = pickle.dumps(payloads(marker)[0][1])
    path = folder / "extra-pickle.ckpt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/extra.pkl", evil)
    out.append(("zip/handmade-data.pkl", path))
    return out


def test_malicious_pickles_are_refused_and_run_nothing(ledger, tmp_path, marker):
    from studio.formats.reader import read_lora
    from studio.models.safe_load import load_state_dict

    cases = files(tmp_path, marker)
    assert len(cases) >= 150
    broken = []
    for case_id, path in cases:
        before = path.read_bytes()
        problems = []
        for loader_name, loader in (("load_state_dict", load_state_dict), ("read_lora", read_lora)):
            try:
                loader(path)
                problem = "loaded"
            except StudioError as exc:
                problem = "" if str(exc) and path.name in str(exc) else f"unclear: {exc}"
                if loader_name == "load_state_dict" and path.suffix in (".ckpt", ".pt", ".pth", ".bin") \
                        and not isinstance(exc, UnsafeFileError) and "cannot read" not in str(exc):
                    problem = f"not reported as unsafe: {exc}"
            except BaseException as exc:  # noqa: BLE001
                problem = f"{type(exc).__name__}: {exc}"
            if marker.exists():
                problem += " CODE RAN"
                marker.unlink()
            if path.read_bytes() != before:
                problem += " file changed"
            if problem:
                problems.append(f"{case_id} via {loader_name}: {problem}")
        ledger.record("pickles: malicious .ckpt/.pt/.bin", "crash" if problems else "clear", "; ".join(problems))
        broken += problems
    assert not broken, "\n".join(broken[:30])


def test_the_gadgets_are_real(tmp_path):
    """Guard against a vacuous test: under the plain unpickler every payload does create the marker."""
    target = tmp_path / "proof"
    for name, blob in raw_pickles(target):
        try:
            pickle.loads(blob)
        except Exception:  # noqa: BLE001 - some gadgets fail after running
            pass
        assert target.exists(), name
        target.unlink()
    for name, payload in payloads(target):
        try:
            result = pickle.loads(pickle.dumps(payload))
            if hasattr(result, "wait"):  # subprocess.Popen runs in the background
                result.wait()
        except Exception:  # noqa: BLE001
            pass
        assert target.exists(), name
        target.unlink()


def test_the_refusal_says_why_and_what_to_do(tmp_path, marker):
    from studio.models.safe_load import load_state_dict

    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2), "x": _Reduce(os.system, f"touch {marker}")}}, path)
    with pytest.raises(UnsafeFileError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert "model.ckpt" in message and "refused" in message and "run code" in message
    assert "safetensors" in info.value.hint


def test_a_plain_tensor_checkpoint_still_loads(tmp_path):
    """The guard must not refuse honest files: tensors and plain containers load."""
    from studio.models.safe_load import load_state_dict

    path = tmp_path / "honest.ckpt"
    torch.save({"state_dict": {"a.weight": torch.ones(2, 2)}, "epoch": 3, "global_step": 10}, path)
    assert torch.equal(load_state_dict(path)["a.weight"], torch.ones(2, 2))


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_resume_from_a_checkpoint_with_a_swapped_optimizer_file(ledger, tiny_sd1, image_folder, tmp_path, marker):
    """A run folder from someone else: its optimizer.pt carries a payload. Resume refuses; nothing runs."""
    from studio.events import Checkpoint, Failed
    from studio.train.engine import run_training
    from tests.conftest import tiny_config

    cfg = tiny_config(tiny_sd1, image_folder, tmp_path / "out", schedule={"max_steps": 1, "batch_size": 2},
                      network={"rank": 4})
    events = list(run_training(cfg))
    ckpt = [Path(e.path) for e in events if isinstance(e, Checkpoint)][-1]
    results = []
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
        original = (ckpt / name).read_bytes()
        torch.save({"state": {}, "x": _Reduce(os.system, f"touch {marker}")}, ckpt / name)
        resumed = list(run_training(cfg, resume_from=ckpt))
        (ckpt / name).write_bytes(original)
        assert not marker.exists(), f"code ran from {name}"
        last = resumed[-1]
        assert isinstance(last, Failed), last
        results.append((name, last))
        clear = "bug in LoRA Studio" not in last.hint
        ledger.record("pickles: swapped files in a resumed checkpoint", "clear" if clear else "crash",
                      f"{name}: {last.error} / {last.hint}")
    unclear = [f"{name}: {e.error} (hint: {e.hint})" for name, e in results if "bug in LoRA Studio" in e.hint]
    assert not unclear, "refused, but reported as a bug instead of a damaged/unsafe checkpoint:\n" + "\n".join(unclear)
