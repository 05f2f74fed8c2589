"""The import contracts in pyproject.toml hold, and they would catch a forbidden import if one were added."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tree), "PATH": str(Path(sys.executable).parent),
                               "PYTHONIOENCODING": "utf-8"})


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """studio/, ui/ and pyproject.toml copied, so a test can add an import without touching the checkout."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("studio", "ui"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tree)
    return tree


def test_the_contracts_hold_for_the_tree():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("ui/panels/train_panel.py", "from studio.train import engine", "the window never imports the training engine"),
    ("studio/config.py", "import PySide6", "the core (studio) never imports Qt or the window"),
    ("studio/formats/kohya.py", "from studio.train import networks", "LoRA formats never import the training engine"),
    ("studio/mix/recipe.py", "from studio.worker import protocol", "mixing never imports the worker"),
])
def test_a_forbidden_import_breaks_its_contract(tree_copy, module, line, contract):
    path = tree_copy / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n\ndef _sneaky():\n    {line}  # inside a function: still an import\n",
                        encoding="utf-8")
        result = _lint(tree_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout[-2000:]
    assert "1 broken" in result.stdout
