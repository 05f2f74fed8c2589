"""Hostile image files through the training image loader (`open_checked`, `fit_to_bucket`), in a child
process: decompression bombs (huge dimensions, tiny files), extreme aspect ratios, files with the wrong
extension, truncated and corrupted files of every format, and unusual-but-legal modes.

Promise: a bad file is an `ImageProblem` naming it (the run skips it and says why); a legal one loads; nothing
else escapes, nothing crashes, and no case grows the process by more than 64 MB.
"""

from __future__ import annotations

from tests.faults.test_hostile_safetensors import judge, run_fuzz


def test_hostile_images_are_refused_clearly_in_bounded_memory(ledger, tmp_path):
    proc, lines = run_fuzz("images", tmp_path)
    cases = [x for x in lines if "case" in x]
    assert len(cases) >= 120, (len(cases), proc.stderr[-2000:])
    broken = judge(ledger, "images: bombs, wrong extensions, corrupt", proc, lines)
    assert not broken, f"{len(broken)} of {len(cases)} cases broke a promise:\n" + "\n".join(broken[:40])
    bombs = [x for x in cases if "bomb" in x["case"] and x["expect"] == "error"]
    assert len(bombs) >= 5
    for x in bombs:
        assert "too large" in x["results"]["train"], x
