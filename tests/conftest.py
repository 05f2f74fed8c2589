"""Shared fixtures: tiny random models and small image folders, built once per session on the spot."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.windows_apis import windows_apis  # noqa: E402,F401  (the fixture, for every test module)


def make_images(folder: Path, n: int = 6, size: tuple[int, int] = (96, 80), seed: int = 0,
                caption: str = "photo, thing {i}, red") -> Path:
    """`n` random RGB PNGs with `.txt` captions in `folder`."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
        Image.fromarray(arr).save(folder / f"img{i:03d}.png")
        (folder / f"img{i:03d}.txt").write_text(caption.format(i=i), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory) -> Path:
    from studio.models.tiny import save_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny-sd1"
    save_tiny_model(path, "sd1", seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    from studio.models.tiny import save_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny-sdxl"
    save_tiny_model(path, "sdxl", seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_sd2v(tmp_path_factory) -> Path:
    from studio.models.tiny import save_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny-sd2v"
    save_tiny_model(path, "sd2-v", seed=0)
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("data") / "images")


def tiny_config(model: Path, data: Path, out: Path, **sections):
    """A ProjectConfig for a fast CPU run on the tiny model: 64 px, batch 2, 4 steps."""
    from studio.config import ProjectConfig

    cfg = ProjectConfig()
    cfg = cfg.with_section("dataset", folders=(str(data),), resolution=64)
    cfg = cfg.with_section("model", path=str(model))
    cfg = cfg.with_section("schedule", max_steps=4, batch_size=2)
    cfg = cfg.with_section("optimizer", unet_lr=1e-3, text_encoder_lr=1e-3)
    cfg = cfg.with_section("output", directory=str(out), name="test-lora")
    for name, values in sections.items():
        cfg = cfg.with_section(name, **values)
    return cfg


def train_until(cfg, step: int) -> list:
    """All events of a run whose user presses Stop once `step` is done (it saves a checkpoint there)."""
    from studio.events import Progress
    from studio.train.control import TrainControl
    from studio.train.engine import run_training

    control = TrainControl()
    events = []
    for event in run_training(cfg, control=control):
        events.append(event)
        if isinstance(event, Progress) and event.step == step:
            control.request_stop()
    return events


@pytest.fixture(autouse=True)
def _cycles_collected_on_the_gui_thread(request):
    """As in the app (ui.gc_guard): once Qt widgets exist, cyclic garbage is collected on this thread only,
    for the rest of the session. A collection triggered on a pool thread that frees a widget crashes."""
    if {"qtbot", "qapp"} & set(request.fixturenames):
        from ui.gc_guard import install_gc_guard

        install_gc_guard(request.getfixturevalue("qapp"))
    yield
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtWidgets import QApplication

        from ui.gc_guard import install_gc_guard

        app = QApplication.instance()
        if app is not None:
            install_gc_guard(app).collect_due()


@pytest.fixture(autouse=True)
def _windows_apis_when_asked(request):
    """`LORA_STUDIO_WINDOWS_APIS=1`: every test runs in the Windows test mode (tests/windows_apis.py), the
    POSIX-only calls removed, so any part of the suite can be checked for them."""
    if os.environ.get("LORA_STUDIO_WINDOWS_APIS") == "1" and "windows_apis" not in request.fixturenames:
        request.getfixturevalue("windows_apis")
    yield


@pytest.fixture(autouse=True)
def _user_folders_of_its_own(tmp_path_factory, monkeypatch):
    """Settings, data and the thumbnail cache in a fresh folder per test, never the real user's: a test must not
    see what an earlier one (or another pytest worker running beside it) saved. A test that sets them itself
    still wins (its monkeypatch comes later)."""
    from studio.dataset.thumbnails import CACHE_ENV
    from studio.paths import CONFIG_ENV, DATA_ENV

    home = tmp_path_factory.mktemp("user")
    for env, folder in ((CONFIG_ENV, "config"), (DATA_ENV, "data"), (CACHE_ENV, "cache")):
        monkeypatch.setenv(env, str(home / folder))


def pytest_collection_modifyitems(config, items):
    """`LORA_STUDIO_TEST_PHASE` (set by scripts/test.sh): `parallel` leaves out the tests marked `serial`, `serial`
    keeps only them, so the wall-clock bounds are measured with no other test competing for the cores."""
    phase = os.environ.get("LORA_STUDIO_TEST_PHASE", "")
    if phase not in ("parallel", "serial"):
        return
    keep, drop = [], []
    for item in items:
        (keep if (item.get_closest_marker("serial") is not None) == (phase == "serial") else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
