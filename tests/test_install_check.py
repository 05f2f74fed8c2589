"""The start-up version guard and the lock: untested versions warn, known-bad combinations stop a run
before any model is loaded, and the lock stays inside pyproject.toml's tested ranges."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from studio import install_check
from studio.install_check import BrokenInstallError, check_install, require_working_install

ROOT = Path(__file__).resolve().parent.parent
# scripts/update-lock.sh and `scripts/test.sh --latest` run the suite in other venvs, made from other locks
LOCK = ROOT / os.environ.get("LORA_STUDIO_LOCK", "requirements.lock")
LATEST = os.environ.get(install_check.SKIP_ENV) == "1"  # --latest: versions outside our ranges, on purpose
GOOD = {"torch": "2.13.0", "diffusers": "0.42.1", "transformers": "5.23.0", "peft": "0.21.2",
        "accelerate": "1.16.0", "PySide6-Essentials": "6.12.0", "bitsandbytes": "0.50.2"}


def stage(monkeypatch, **versions) -> None:
    """Make the guard see these versions (None: not installed); the rest as in GOOD."""
    table = dict(GOOD)
    table.update({name.replace("_", "-"): value for name, value in versions.items()})
    monkeypatch.setattr(install_check, "installed_version", lambda dist: table.get(dist))
    monkeypatch.delenv(install_check.SKIP_ENV, raising=False)


def test_the_tested_set_passes_and_the_real_install_matches_the_lock():
    assert check_install(lambda dist: GOOD.get(dist)).ok
    if LATEST:
        pytest.skip("the newest versions are outside the tested ranges by design")
    report = check_install()  # this venv was installed from the lock
    assert report.ok, (report.warning(), report.error())


def test_transformers_that_needs_a_newer_peft_is_an_error_naming_both_and_the_repair(monkeypatch):
    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    with pytest.raises(BrokenInstallError) as caught:
        require_working_install()
    text = str(caught.value)
    assert "transformers 5.24.0" in text and "peft 0.21.2" in text and "needs peft 0.22 or newer" in text
    assert f'-m pip install -r "{ROOT / "requirements.lock"}"' in text
    assert "\n" not in text


def test_a_version_outside_the_tested_range_is_one_warning_with_both_versions(monkeypatch):
    stage(monkeypatch, peft="0.23.1", accelerate="0.9.0")
    report = require_working_install()  # no error: it may still work
    warning = report.warning()
    assert "peft 0.23.1 (tested: >=0.15, <0.22)" in warning
    assert "accelerate 0.9.0 (tested: >=1.0, <1.17)" in warning
    assert report.repair in warning and "torch" not in warning


def test_a_missing_core_library_is_an_error_but_a_missing_optional_one_is_not(monkeypatch):
    stage(monkeypatch, bitsandbytes=None, PySide6_Essentials=None)
    assert check_install().ok
    stage(monkeypatch, diffusers=None)
    assert "diffusers is not installed" in check_install().error()


def test_the_minimum_peft_that_transformers_declares_is_enforced_before_the_table_knows(monkeypatch):
    monkeypatch.setattr(install_check, "_transformers_min_peft", lambda: "0.30.0")
    monkeypatch.setattr(install_check, "KNOWN_BAD", ())  # only the declared minimum speaks (also with --latest)
    error = check_install().error()  # the real versions, but transformers "declares" it needs peft 0.30
    assert error and "needs peft 0.30.0 or newer" in error
    assert install_check._MIN_PEFT.search('x = 1\nMIN_PEFT_VERSION = "0.22.0"\n').group(1) == "0.22.0"


def test_the_skip_switch_and_a_frozen_app_skip_the_check(monkeypatch):
    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    monkeypatch.setenv(install_check.SKIP_ENV, "1")
    assert require_working_install().ok


def test_cli_train_with_the_text_encoder_stops_before_loading_the_model(monkeypatch, capsys, tmp_path, tiny_sd1,
                                                                         image_folder):
    from studio import cli
    from studio.train import engine

    project = tmp_path / "project.toml"
    project.write_text(f'[model]\npath = "{tiny_sd1.as_posix()}"\n[dataset]\nfolders = ["{image_folder.as_posix()}"]\n'
                       "[network]\ntrain_text_encoder = true\n", encoding="utf-8")
    loaded: list = []
    monkeypatch.setattr(engine, "run_training", lambda *a, **k: loaded.append(a) or iter(()))
    monkeypatch.setattr("studio.models.load.load_model", lambda *a, **k: loaded.append(a), raising=False)
    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    code = cli.main(["train", str(project), "--steps", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not loaded and not (tmp_path / "out").exists()
    assert len(err.splitlines()) == 1
    assert re.search(r"transformers 5\.24\.0 needs peft 0\.22 or newer, but peft 0\.21\.2 is installed", err)
    assert "pip install -r" in err and "requirements.lock" in err


def test_read_only_commands_go_ahead_with_a_warning(monkeypatch, capsys, tmp_path):
    from studio import cli

    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    cli.main(["check-dataset", str(tmp_path)])
    assert "warning: transformers 5.24.0 needs peft" in capsys.readouterr().err


def test_the_worker_fails_every_job_with_the_repair_command_before_importing_torch(monkeypatch):
    from studio.worker import protocol as p
    from studio.worker.process import Worker

    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    worker = Worker(io.BytesIO(), io.BytesIO())
    sent: list = []
    worker.send = sent.append
    assert worker._install_is_usable() is False
    assert isinstance(sent[-1], p.WorkerError) and "peft 0.21.2" in sent[-1].error
    assert worker._warm_error is not None and "pip install -r" in worker._warm_error.error


@pytest.mark.gui
def test_the_window_shows_a_dialog_with_the_command(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from ui.dialogs.install_problems import install_problem_box

    assert install_problem_box(check_install(lambda dist: GOOD.get(dist))) is None
    stage(monkeypatch, transformers="5.24.0", peft="0.21.2")
    report = check_install()
    box = install_problem_box(report)
    qtbot.addWidget(box)
    assert box.icon() == QMessageBox.Icon.Critical
    assert "transformers 5.24.0 needs peft" in box.text() and report.repair in box.informativeText()
    copy = next(b for b in box.buttons() if b.text() == "Copy command")
    copy.click()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == report.repair


# -------------------------------------------------------------------------------------------------
def _locked() -> dict[str, Version]:
    """requirements.lock's pins that apply to this interpreter."""
    env = default_environment()
    pins: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower()] = Version(spec.version)
    return pins


@pytest.mark.skipif(LATEST, reason="the newest versions are outside the tested ranges by design")
def test_the_lock_pins_every_requirement_inside_its_tested_range():
    pins = _locked()
    for name, spec in install_check.tested_ranges().items():
        if name == "tomli" and sys.version_info >= (3, 11):
            continue
        assert name in pins, f"{name} is not in {LOCK.name}: run scripts/update-lock.sh"
        assert spec.contains(pins[name]), f"the lock's {name} {pins[name]} is outside pyproject's {spec}"
    assert pins["torch"] == Version("2.13.0") and pins["transformers"] < Version("5.24")
    assert not [name for name in pins if name.startswith("nvidia-") or name == "triton"]


def test_the_venv_holds_what_the_lock_says():
    from importlib import metadata

    wrong = {name: (str(v), metadata.version(name)) for name, v in _locked().items()
             if Version(metadata.version(name)).public != str(v)}
    assert not wrong, f"installed versions differ from {LOCK.name}: {wrong}; run bash scripts/setup.sh --repair"


def test_every_installer_uses_the_lock():
    for script in ("scripts/setup.sh", "packaging/LoRA-Studio.bat", "packaging/LoRA-Studio.command",
                   "packaging/lora-studio.sh"):
        text = (ROOT / script).read_text(encoding="utf-8")
        assert "requirements.lock" in text or "scripts/setup.sh" in text, script
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text(encoding="utf-8")
