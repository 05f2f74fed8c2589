"""The window's training queue with the real worker (slow): three tiny SD1.5 projects queued in the Queue tab
run unattended, each with its export; the worker killed during the second leaves the first's export as it
was and the second failed and resumable, the third still trains, and Queue again resumes the second from
its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from studio.config import dumps_project  # noqa: E402
from studio.events import Started  # noqa: E402
from studio.run_folder import last_checkpoint, read_events  # noqa: E402
from studio.train_queue import TrainQueue  # noqa: E402
from tests.conftest import tiny_config  # noqa: E402
from tests.train_gui_helpers import close_window, open_window  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _kohya_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return list(f.keys())


def test_three_queued_in_the_window_run_unattended_and_a_killed_worker_leaves_the_second_resumable(
        qtbot, tmp_path, monkeypatch, tiny_sd1, image_folder):
    monkeypatch.setenv("LORA_STUDIO_DATA_DIR", str(tmp_path / "data"))  # the Queue tab's queue.json
    window = open_window(qtbot, tmp_path, None)
    view = window.train_panel.queue_view
    try:
        for n, steps in ((1, 4), (2, 12), (3, 4)):
            cfg = tiny_config(tiny_sd1, image_folder, tmp_path / "out", schedule={"max_steps": steps, "batch_size": 1},
                              output={"name": f"run{n}", "save_every_n_steps": 2})
            project = tmp_path / f"project{n}" / "project.toml"
            project.parent.mkdir()
            project.write_text(dumps_project(cfg), encoding="utf-8")
            view.add(str(project), dumps_project(cfg))
        queue = TrainQueue(tmp_path / "data" / "queue.json")
        assert [e.label for e in queue.entries()] == ["run1", "run2", "run3"] and view.list.count() == 3

        view.run_button.click()

        def second_checkpoint():
            entry = queue.get(2)
            return entry.state == "running" and entry.run_dir and last_checkpoint(Path(entry.run_dir))

        qtbot.waitUntil(lambda: bool(second_checkpoint()), timeout=240_000)
        export1 = tmp_path / "out" / "run1.safetensors"
        first_bytes = export1.read_bytes()
        window.worker.kill()  # the worker process, during the second entry

        qtbot.waitUntil(lambda: queue.get(3).state == "done", timeout=240_000)  # unattended: on a new worker
        qtbot.waitUntil(lambda: view.run_button.text() == "Run queue", timeout=10_000)
        first, second, third = queue.entries()
        assert (first.state, first.export) == ("done", str(export1)) and export1.read_bytes() == first_bytes
        assert second.state == "failed" and second.error.startswith("the worker stopped")
        step = second.checkpoint()[0]
        assert 2 <= step < 12
        assert f"[failed, resumable from step {step}]" in view.list.item(1).text()
        assert third.export == str(tmp_path / "out" / "run3.safetensors")

        view.list.setCurrentRow(1)
        view.retry_button.click()
        view.run_button.click()
        qtbot.waitUntil(lambda: queue.get(2).state == "done", timeout=240_000)
        qtbot.waitUntil(lambda: view.run_button.text() == "Run queue", timeout=10_000)
        starts = [e for e in read_events(Path(second.run_dir) / "events.jsonl") if isinstance(e, Started)]
        assert [s.start_step for s in starts] == [0, step]
        for n in (1, 2, 3):
            export = tmp_path / "out" / f"run{n}.safetensors"
            assert queue.get(n).export == str(export)
            keys = _kohya_keys(export)
            assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
            assert all(k.startswith(("lora_unet_", "lora_te_")) for k in keys)
        assert export1.read_bytes() == first_bytes
    finally:
        view.runner.stop()
        close_window(window)
