"""Issue 16 D in the window: the Export boxes list each loader's verdict from the file's sidecar, and offer a
plain-LoRA copy (made by the worker's `mix_plain` job) only where a loader is unfaithful."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

import torch  # noqa: E402

from studio.formats.compat import compat_report  # noqa: E402
from studio.formats.compat_report import write_sidecar  # noqa: E402
from studio.formats.lora_file import LoraFile, LoraModule  # noqa: E402

pytestmark = pytest.mark.gui


def _lora(tmp_path: Path, name: str, *, dora: bool) -> Path:
    m = LoraModule(name="lora_unet_a", down=torch.ones(2, 4), up=torch.ones(4, 2), alpha=1.0,
                   dora_scale=torch.ones(4, 1) if dora else None)
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(b"not read by the window")
    write_sidecar(path, compat_report(LoraFile(modules={m.name: m}, family="sd1")))
    return path


def test_the_view_lists_loaders_and_offers_a_copy_only_when_one_is_unfaithful(qtbot, tmp_path):
    from ui.widgets.compat_report_view import CompatReportView

    view = CompatReportView()
    qtbot.addWidget(view)
    dora = _lora(tmp_path, "dora", dora=True)
    view.show_file(dora)
    qtbot.waitUntil(lambda: "AUTOMATIC1111" in view.lines.text())
    lines = view.lines.text().splitlines()
    assert lines[0] == "✗ AUTOMATIC1111 1.10.1: wrong - all keys load, but the result differs from what was trained"
    assert any(line.startswith("✓ ComfyUI") for line in lines) and len(lines) == 5
    assert "per input column" in view.lines.toolTip()
    assert not view.plain_button.isHidden()
    got: list = []
    view.plain_copy_requested.connect(lambda *a: got.append(a))
    view.rank.setValue(12)
    view.ask_path = lambda title, suggestion: (got.append(suggestion), str(tmp_path / "copy.safetensors"))[1]
    view.plain_button.click()
    assert got == [str(tmp_path / "dora-plain-r12.safetensors"), (str(dora), 12, str(tmp_path / "copy.safetensors"))]
    assert not view.plain_button.isEnabled()  # until the worker answers
    view.show_copy_result(str(tmp_path / "copy.safetensors"), "relative error 1.00% overall")
    assert view.plain_button.isEnabled() and "relative error 1.00%" in view.copy_result.text()

    view.show_file(_lora(tmp_path, "plain", dora=False))
    qtbot.waitUntil(lambda: view.lines.text().startswith("✓ AUTOMATIC1111"))
    assert view.plain_button.isHidden()
    view.show_file(tmp_path / "no-sidecar.safetensors")
    qtbot.waitUntil(lambda: "No compatibility report" in view.lines.text())


def test_train_panel_sends_the_copy_to_the_worker_and_shows_its_result(qtbot, tmp_path):
    from studio.config import ProjectConfig
    from studio.events import Failed, Finished
    from studio.job_requests import PlainCopyRequest
    from studio.mix.messages import MixResult
    from studio.worker import protocol as p
    from studio.worker.client import WorkerExited
    from tests.jobs_helpers import ScriptedWorker
    from ui.jobs import JobManager
    from ui.panels.train_panel import TrainPanel

    worker = ScriptedWorker()
    jobs = JobManager(worker)
    panel = TrainPanel()
    panel.use_jobs(jobs)
    worker.message_received.connect(panel.handle_message)
    qtbot.addWidget(panel)
    cfg = ProjectConfig().with_section("model", path=str(tmp_path / "base-model"))
    panel.set_project(cfg, None)
    dora = _lora(tmp_path, "run", dora=True)
    assert panel.export_box.isHidden()
    panel.handle_message(p.JobStarted(job_id=1, kind="start"))
    panel.handle_message(Finished(outputs=(str(dora),), step=4))
    panel.handle_message(p.JobEnded(job_id=1, kind="start"))
    assert not panel.export_box.isHidden()
    qtbot.waitUntil(lambda: "AUTOMATIC1111" in panel.compat.lines.text())
    panel.compat.ask_path = lambda *a: str(tmp_path / "run-plain.safetensors")
    panel.compat.plain_button.click()
    (job,) = worker.sent
    assert job == PlainCopyRequest(src=str(dora), out=str(tmp_path / "run-plain.safetensors"), rank=32,
                                   base=str(tmp_path / "base-model"), dtype=cfg.output.dtype, request_id=1)
    worker.say(p.JobStarted(job_id=2, kind="mix_plain"),
               MixResult(kind="plain", request_id=1, path=str(tmp_path / "run-plain.safetensors"),
                         summary="plain LoRA, rank ≤ 32: relative error 0.50% overall"),
               Finished(outputs=(str(tmp_path / "run-plain.safetensors"),)), p.JobEnded(job_id=2, kind="mix_plain"))
    assert "relative error 0.50% overall" in panel.compat.copy_result.text()
    assert panel.run_state == "idle"  # the copy's Finished is not the run's
    panel.compat.plain_button.click()
    worker.say(p.JobStarted(job_id=3, kind="mix_plain"),
               Failed(error="run.safetensors is a DoRA LoRA", hint="choose the base model"))
    assert "The plain copy failed" not in panel.compat.copy_result.text()  # said when the job ends
    worker.say(p.JobEnded(job_id=3, kind="mix_plain"))
    assert "The plain copy failed: run.safetensors is a DoRA LoRA" in panel.compat.copy_result.text()
    # the worker refuses the job, or dies during it: the box says so, never hangs
    panel.compat.plain_button.click()
    worker.say(p.WorkerError(error="a job is already running", hint="wait for it"))
    assert "The plain copy failed: a job is already running" in panel.compat.copy_result.text()
    assert panel.compat.plain_button.isEnabled()
    panel.compat.plain_button.click()
    worker.say(p.JobStarted(job_id=4, kind="mix_plain"))
    worker.running = False
    worker.say(WorkerExited(returncode=-9, expected=False))
    assert "The plain copy failed: the worker stopped: it was killed by SIGKILL" in panel.compat.copy_result.text()
    assert panel._job_kind is None and panel.compat.plain_button.isEnabled()


def test_mixer_export_box_shows_the_merged_files_report(qtbot, tmp_path):
    from ui.widgets.mix_export_box import MixExportBox

    box = MixExportBox()
    qtbot.addWidget(box)
    merged = _lora(tmp_path, "mix", dora=False)
    box.show_result(str(merged), "concat, 1 modules\nAUTOMATIC1111 1.10.1: ok", merged=True)
    qtbot.waitUntil(lambda: "sd-scripts" in box.compat.lines.text())
    assert box.result.text() == f"Wrote {merged}\nconcat, 1 modules"
    assert box.compat.plain_button.isHidden()
