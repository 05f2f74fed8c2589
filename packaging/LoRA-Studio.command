#!/usr/bin/env bash
# LoRA Studio launcher for macOS. Double-click it in Finder: Terminal opens; the first time it creates the
# Python environment in .venv and installs LoRA Studio with visible progress (a few minutes), then opens the
# app. Later double-clicks open the app directly.
# If macOS refuses to open it ("unidentified developer"): right-click → Open, once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

TORCH_VERSION=2.13.0  # the pin from pyproject.toml
stamp=.venv/.lora-studio-app-installed

fail() {
  echo
  echo "Setup did not finish: $*" >&2
  echo "Fix the problem above and double-click LoRA-Studio.command again; it continues where it stopped." >&2
  read -r -p "Press Enter to close this window." _
  exit 1
}

installed() {  # our stamp, or scripts/setup.sh's: a copy of the lock that was installed
  [ -x .venv/bin/python ] || return 1
  for s in "$stamp" .venv/.lora-studio-installed; do
    if cmp -s requirements.lock "$s"; then return 0; fi
  done
  return 1
}

if ! installed; then
  echo "LoRA Studio: first-time setup (a few minutes)"
  py=""
  for cand in "${PYTHON:-}" python3.12 python3.11 python3.10 python3; do
    if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      py="$cand"; break
    fi
  done
  [ -n "$py" ] || fail "LoRA Studio needs Python 3.10 or newer: install it from https://www.python.org/downloads/macos/"
  echo "==> [1/3] creating the environment in $root/.venv (Python: $("$py" --version 2>&1))"
  [ -x .venv/bin/python ] || "$py" -m venv .venv || fail "could not create .venv"
  echo "==> [2/3] installing PyTorch $TORCH_VERSION (the largest download)"
  .venv/bin/python -m pip install --progress-bar on "torch==$TORCH_VERSION" || fail "could not install PyTorch"
  echo "==> [3/3] installing LoRA Studio and the tested versions of its other libraries (requirements.lock)"
  .venv/bin/python -m pip install --progress-bar on -r requirements.lock || fail "could not install the libraries"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . || fail "could not install LoRA Studio"
  cp requirements.lock "$stamp"
  echo "==> done. Opening LoRA Studio…"
fi
exec .venv/bin/python -m ui.app "$@"
