"""The Train panel's widgets on their own: gallery, compare, history, chart, log, worker client states."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PIL import Image  # noqa: E402

from studio.events import Finished, Progress, Sample, Started  # noqa: E402
from studio.run_folder import event_line  # noqa: E402
from studio.run_folder import CHECKPOINT_STATE  # noqa: E402

pytestmark = pytest.mark.gui


def _png(path, colour):
    Image.new("RGB", (64, 64), colour).save(path)
    return str(path)


def test_gallery_groups_by_step_newest_first_enlarges_and_compares(qtbot, tmp_path):
    from ui.widgets.preview_gallery import PreviewGallery

    gallery = PreviewGallery()
    qtbot.addWidget(gallery)
    gallery.show()
    for step, colour in ((2, "red"), (4, "blue")):
        for i, prompt in enumerate(("a cat", "a dog")):
            gallery.add(step, prompt, _png(tmp_path / f"s{step}-{i}.png", colour))
    qtbot.waitUntil(lambda: all(t.loaded for t in gallery.thumbnails))
    assert gallery.count() == 4 and gallery.steps() == [2, 4]
    column = gallery._column
    assert [column.itemAt(i).widget().objectName() for i in range(2)] == ["step-4", "step-2"]
    assert gallery.compare_button.isEnabled()

    dialog = gallery.open_image(gallery.thumbnails[1])
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.image.pixmap() is not None and not dialog.image.pixmap().isNull())
    assert dialog.image.pixmap().width() == 1024  # a 64-px preview is enlarged by a whole factor
    assert gallery.thumbnails[0].pixmap().width() == 128

    compare = gallery.open_compare()
    qtbot.addWidget(compare)
    assert (compare.left.currentData(), compare.right.currentData()) == (2, 4)
    prompt, left, right = compare._cells[1]
    qtbot.waitUntil(lambda: left.pixmap() is not None and not left.pixmap().isNull()
                    and right.pixmap() is not None and not right.pixmap().isNull())
    assert prompt.text() == "a dog"
    assert left.pixmap().toImage().pixelColor(5, 5).red() == 255
    assert right.pixmap().toImage().pixelColor(5, 5).blue() == 255

    gallery.truncate(2)  # a run resumed from step 2 makes step 4's previews again
    assert gallery.steps() == [2] and gallery.count() == 2 and not gallery.compare_button.isEnabled()


def test_unreadable_preview_says_so(qtbot, tmp_path):
    from ui.widgets.preview_gallery import PreviewGallery

    gallery = PreviewGallery()
    qtbot.addWidget(gallery)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    thumb = gallery.add(1, "p", str(bad))
    qtbot.waitUntil(lambda: thumb.text() == "unreadable")


def test_chart_keeps_points_and_truncates_on_resume(qtbot):
    from ui.widgets.loss_chart import LossChart

    chart = LossChart()
    qtbot.addWidget(chart)
    chart.show()
    for step in range(1, 7):
        chart.add(step, 1.0 / step, 1.0, 1e-4)
    chart.add(5, 0.5, 0.5, 1e-4)  # a resumed run repeats step 5: the old 5 and 6 go
    assert chart.count() == 5 and chart.last() == (5.0, 0.5, 0.5, 1e-4)
    chart.add(6, float("nan"), 0.5, 1e-4)  # a diverged step is kept, not crashing the plot
    qtbot.waitUntil(lambda: chart._raw_curve.getData()[0] is not None
                    and len(chart._raw_curve.getData()[0]) == 6, timeout=3000)
    chart.clear()
    assert chart.count() == 0


def test_history_lists_runs_with_details_and_resume(qtbot, tmp_path):
    from ui.widgets.run_history import RunHistory

    for name, events, ckpt in (
            ("20260101-000000-done", [Started(run_dir="x", total_steps=4),
                                      Progress(step=4, total=4, epoch=1, loss=0.25, smoothed_loss=0.3, lr=1e-4,
                                               it_per_s=1.0),
                                      Finished(outputs=(), step=4)], None),
            ("20260102-000000-killed", [Started(run_dir="x", total_steps=9),
                                        Progress(step=3, total=9, epoch=1, loss=0.5, smoothed_loss=0.5, lr=1e-4,
                                                 it_per_s=1.0),
                                        Sample(step=2, prompt="p", seed=1, path=_png(tmp_path / "s.png", "red"))], 2)):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "config.toml").write_text("[network]\nrank = 4\n", encoding="utf-8")
        (run / "events.jsonl").write_text("".join(event_line(e) + "\n" for e in events))
        if ckpt:
            (run / "checkpoints" / f"checkpoint-{ckpt:07d}").mkdir(parents=True)
            (run / "checkpoints" / f"checkpoint-{ckpt:07d}" / CHECKPOINT_STATE).write_text("{}")
    history = RunHistory()
    qtbot.addWidget(history)
    resumed, previews = [], []
    history.resume_requested.connect(resumed.append)
    history.previews_requested.connect(previews.append)
    history.set_project_dir(tmp_path)
    qtbot.waitUntil(lambda: history.tree.topLevelItemCount() == 2)
    first = history.tree.topLevelItem(0)
    assert [first.text(c) for c in range(4)] == ["20260102-000000-killed", "interrupted", "3 / 9", "0.5000"]
    assert history.resume_button.isEnabled() and history.previews_button.isEnabled()
    assert "rank = 4" in history.details.toPlainText() and "Last checkpoint: step 2" in history.details.toPlainText()
    history.resume_button.click()
    history.previews_button.click()
    assert resumed[0].name == previews[0].name == "20260102-000000-killed"
    history.tree.setCurrentItem(history.tree.topLevelItem(1))
    assert not history.resume_button.isEnabled() and history.tree.currentItem().text(3) == "0.2500"
    history.set_resume_allowed(False)
    history.tree.setCurrentItem(history.tree.topLevelItem(0))
    assert not history.resume_button.isEnabled()


def test_log_view_colours_levels_and_hides_debug(qtbot):
    from ui.widgets.log_view import LogView

    log = LogView()
    qtbot.addWidget(log)
    log.add("info", "hello")
    log.add("debug", "noise")
    log.add("error", "<b>boom</b>")
    text = log.text()
    assert "info: hello" in text and "error: <b>boom</b>" in text and "noise" not in text


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_worker_client_reports_start_ready_and_kill(qtbot):
    import os
    import signal

    from ui.worker_client import WorkerClient

    client = WorkerClient()
    states, messages = [], []
    client.state_changed.connect(lambda s, d: states.append(s))
    client.message_received.connect(messages.append)
    client.start()
    try:
        assert states == ["starting"]
        qtbot.waitUntil(lambda: client.state == "ready", timeout=120_000)
        assert client.info is not None and client.info.pid == client.pid
        os.kill(client.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: client.state == "dead", timeout=10_000)
        assert "SIGKILL" in client.detail and not client.running
        assert type(messages[-1]).__name__ == "WorkerExited"
        client.start()  # a new one
        qtbot.waitUntil(lambda: client.running and client.state in ("starting", "ready"), timeout=10_000)
        client.shutdown(timeout_s=30)
        qtbot.waitUntil(lambda: client.state == "stopped", timeout=60_000)
    finally:
        client.kill()
