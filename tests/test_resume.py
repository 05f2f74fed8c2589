"""Stop, resume and crash recovery at the engine level: a resumed run continues exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.events import Checkpoint, Failed, Finished, Progress
from studio.train.engine import run_training
from tests.conftest import tiny_config, train_until


def _losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Progress)}


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tiny_sd1, image_folder, tmp_path):
    sections = dict(schedule={"max_steps": 6, "batch_size": 2}, output={"save_every_n_steps": 3,
                                                                       "directory": str(tmp_path / "a")},
                    network={"rank": 4, "alpha": 4.0, "train_text_encoder": True})
    straight = list(run_training(tiny_config(tiny_sd1, image_folder, tmp_path / "a", **sections)))
    assert isinstance(straight[-1], Finished)

    sections["output"] = {"save_every_n_steps": 3, "directory": str(tmp_path / "b")}
    cfg = tiny_config(tiny_sd1, image_folder, tmp_path / "b", **sections)
    first = train_until(cfg, 4)  # stops before step 5; saves step 4
    assert isinstance(first[-1], Finished) and first[-1].stopped and first[-1].step == 4
    checkpoints = [Path(e.path) for e in first if isinstance(e, Checkpoint)]
    assert [c.name for c in checkpoints] == ["checkpoint-0000003", "checkpoint-0000004"]

    # resume from step 3 (as after a crash that lost step 4): steps 4-6 must match the straight run
    resumed = list(run_training(cfg, resume_from=checkpoints[0]))
    assert isinstance(resumed[-1], Finished) and not resumed[-1].stopped
    expected, got = _losses(straight), _losses(resumed)
    assert sorted(got) == [4, 5, 6]
    for step in got:
        assert got[step] == expected[step], (step, got[step], expected[step])
    assert _losses(first)[4] == expected[4]
    assert Path(resumed[0].run_dir) == checkpoints[0].parent.parent  # the same run folder continues


def test_resume_on_another_model_family_is_refused(tiny_sd1, tiny_sdxl, image_folder, tmp_path):
    cfg = tiny_config(tiny_sd1, image_folder, tmp_path, schedule={"max_steps": 1, "batch_size": 2})
    events = list(run_training(cfg))
    checkpoint = [Path(e.path) for e in events if isinstance(e, Checkpoint)][-1]
    other = cfg.with_section("model", path=str(tiny_sdxl))
    result = list(run_training(other, resume_from=checkpoint))
    assert len(result) == 1 and isinstance(result[0], Failed)
    assert "trained on a sd1 model" in result[0].error and "sdxl" in result[0].error


def test_resume_from_a_folder_that_is_not_a_checkpoint(tiny_sd1, image_folder, tmp_path):
    cfg = tiny_config(tiny_sd1, image_folder, tmp_path)
    result = list(run_training(cfg, resume_from=tmp_path))
    assert isinstance(result[-1], Failed) and "not a training checkpoint" in result[-1].error


def test_images_excluded_in_the_dataset_panel_are_not_trained(tiny_sd1, tmp_path):
    from studio.config import save_project
    from studio.dataset.state import DatasetState, save_state
    from studio.events import Started
    from tests.conftest import make_images

    data = make_images(tmp_path / "images", n=4)
    save_state(DatasetState().with_excluded([data / "img000.png", data / "img001.png"], True), tmp_path)
    cfg = tiny_config(tiny_sd1, data, tmp_path / "out", schedule={"max_steps": 1, "batch_size": 2})
    project = tmp_path / "project.toml"
    save_project(cfg, project)
    events = list(run_training(cfg, project_file=project))
    assert isinstance(events[-1], Finished), events[-1]
    assert [e.num_images for e in events if isinstance(e, Started)] == [2]
