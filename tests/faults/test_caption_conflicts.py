"""Captions edited by another program while the app has them open: never overwritten without asking.

`CaptionStore.write` must notice every way another program can change a sidecar after we read it (rewrite,
same-size rewrite within the same second, atomic replace, append, delete, create, a `touch` that changes
nothing) and then write nothing, handing back the text now on disk for the window to show; batch edits and
undo follow the same rule file by file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from studio.dataset.captions import CaptionStore
from studio.dataset.edits import apply_edit, plan_edit

FAULT = "captions edited by another program"


def _outside_edits(sidecar: Path) -> list[tuple[str, callable, str | None]]:
    """(name, what the other program does, the text it leaves; None: no file)."""

    def rewrite(text: str):
        return lambda: sidecar.write_text(text, encoding="utf-8")

    def same_size_same_mtime():
        st = sidecar.stat()
        sidecar.write_text("X" * st.st_size, encoding="utf-8")
        os.utime(sidecar, ns=(st.st_atime_ns, st.st_mtime_ns))  # a tool that keeps the timestamp

    def atomic_replace():
        tmp = sidecar.with_name(".editor-swap")
        tmp.write_text("replaced by an editor", encoding="utf-8")
        os.replace(tmp, sidecar)

    def append():
        with open(sidecar, "a", encoding="utf-8") as fh:
            fh.write(", added tag")

    def crlf():
        sidecar.write_bytes(sidecar.read_bytes().replace(b"\n", b"\r\n") + b"\r\n extra")

    def latin1():
        sidecar.write_bytes("caf\xe9 au lait".encode("latin-1"))

    return [
        ("rewrite", rewrite("edited elsewhere"), "edited elsewhere"),
        ("rewrite-same-size", lambda: sidecar.write_text("Y" * sidecar.stat().st_size), None),
        ("same-size-same-mtime", same_size_same_mtime, None),
        ("atomic-replace", atomic_replace, "replaced by an editor"),
        ("append", append, None),
        ("delete", lambda: sidecar.unlink(), None),
        ("empty", rewrite(""), ""),
        ("crlf-and-more", crlf, None),
        ("latin1", latin1, "caf\xe9 au lait"),
    ]


@pytest.mark.parametrize("age_s", [0.0, 10.0], ids=["fresh-file", "settled-file"])
def test_an_outside_edit_is_never_overwritten(ledger, tmp_path, age_s):
    broken = []
    for i, (name, edit, _) in enumerate(_outside_edits(tmp_path / "x.txt")):
        image = tmp_path / f"img{i}.png"
        sidecar = image.with_suffix(".txt")
        sidecar.write_text("original caption, tag", encoding="utf-8")
        if age_s:
            old = time.time_ns() - int(age_s * 1e9)
            os.utime(sidecar, ns=(old, old))
        store = CaptionStore()
        assert store.read(image) == "original caption, tag"
        # the other program's edit, aimed at this image's sidecar
        cases = {n: (e, t) for n, e, t in _outside_edits(sidecar)}
        edit, _ = cases[name]
        edit()
        on_disk = sidecar.read_bytes() if sidecar.exists() else None
        result = store.write(image, "our edit in the app")
        after = sidecar.read_bytes() if sidecar.exists() else None
        problem = ""
        if result.written:
            problem = "overwrote the other program's edit"
        elif after != on_disk:
            problem = "changed the file although it reported not writing"
        elif result.current != (None if on_disk is None else CaptionStore().read(image)):
            problem = f"handed back {result.current!r}, the disk holds {on_disk!r}"
        ledger.record(FAULT, "lost" if problem.startswith("overwrote") else "crash" if problem else "recovered",
                      f"{name} ({age_s} s old): {problem}")
        if problem:
            broken.append(f"{name}: {problem}")
        # once the window has shown the reloaded text, the next write goes through
        if not result.written:
            assert store.write(image, "our edit, second try").written
            assert sidecar.read_text(encoding="utf-8") == "our edit, second try"
    assert not broken, "\n".join(broken)


def test_a_touch_that_changes_nothing_is_not_a_conflict(tmp_path):
    image = tmp_path / "a.png"
    image.with_suffix(".txt").write_text("same", encoding="utf-8")
    store = CaptionStore()
    store.read(image)
    os.utime(image.with_suffix(".txt"))
    assert store.write(image, "new").written


def test_a_caption_created_elsewhere_for_an_image_without_one(ledger, tmp_path):
    image = tmp_path / "a.png"
    store = CaptionStore()
    assert store.read(image) is None
    image.with_suffix(".txt").write_text("made by a tagger", encoding="utf-8")
    result = store.write(image, "ours")
    assert not result.written and result.current == "made by a tagger"
    assert image.with_suffix(".txt").read_text(encoding="utf-8") == "made by a tagger"
    ledger.record(FAULT, "recovered", "created elsewhere")


def test_batch_edit_and_undo_leave_outside_edits_alone(ledger, tmp_path):
    store = CaptionStore()
    images = [tmp_path / f"img{i}.png" for i in range(40)]  # above the parallel-write threshold
    for image in images:
        image.with_suffix(".txt").write_text("red, cat", encoding="utf-8")
        store.read(image)
    touched_before = images[::7]
    for image in touched_before:
        image.with_suffix(".txt").write_text("edited before the batch", encoding="utf-8")
    edit = plan_edit("add tag", {image: ("red, cat", "red, cat, new") for image in images})
    result = apply_edit(store, edit)
    assert set(result.reloaded) == set(touched_before)
    for image in touched_before:
        assert image.with_suffix(".txt").read_text(encoding="utf-8") == "edited before the batch"
    touched_after = images[1::9]
    for image in touched_after:
        image.with_suffix(".txt").write_text("edited after the batch", encoding="utf-8")
    undo = apply_edit(store, edit.only(result.written), undo=True)  # what the undo stack keeps
    assert set(undo.reloaded) == set(touched_after) - set(touched_before)
    problems = []
    for image in images:
        text = image.with_suffix(".txt").read_text(encoding="utf-8")
        want = ("edited after the batch" if image in touched_after else
                "edited before the batch" if image in touched_before else "red, cat")
        if text != want:
            problems.append(f"{image.name}: {text!r}, expected {want!r}")
    ledger.record(FAULT, "lost" if problems else "recovered", f"batch + undo: {problems[:3]}")
    assert not problems, problems
