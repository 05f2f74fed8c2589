#!/usr/bin/env bash
# Create or reuse .venv and install LoRA Studio with the exact dependency versions of requirements.lock
# (all extras: GUI, tests, optimizers, captioning, packaging). `--repair` reinstalls them, whatever is there.
# torch is pinned (2.13.0): an unpinned torch would pull a multi-GB CUDA build on machines that want CPU,
# while on an NVIDIA machine the same pin resolves to the CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${LORA_STUDIO_VENV:-.venv}              # scripts/test.sh --latest and update-lock.sh use other venvs
LOCK=${LORA_STUDIO_LOCK:-requirements.lock}  # the exact versions the suite last passed with
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "LoRA Studio needs Python 3.10 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PY" -m venv "$VENV"
fi
# The stamp is a copy of the lock that was installed: a changed lock (a pull, a refresh) reinstalls.
stamp=$VENV/.lora-studio-installed
if [ "${1:-}" = --repair ] || [ ! -f "$stamp" ] || ! cmp -s "$LOCK" "$stamp" || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing LoRA Studio and the locked versions of its dependencies ($LOCK) into $VENV"
  echo "    (first time: a few minutes)"
  "$VENV/bin/python" -m pip install --progress-bar on -r "$LOCK"
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  cp "$LOCK" "$stamp"
fi

# Qt needs a few system libraries that bare Linux images lack; install them when we can.
qt_missing() {
  local qt
  qt=$("$VENV/bin/python" -c 'import PySide6, os; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))' 2>/dev/null) || return 1
  ldd "$qt"/lib/libQt6Gui.so.* "$qt"/lib/libQt6Widgets.so.* "$qt"/plugins/platforms/libqoffscreen.so \
      "$qt"/plugins/platforms/libqxcb.so 2>/dev/null | grep -q "not found"
}
if [ "$(uname -s)" = Linux ] && qt_missing; then
  pkgs="libgl1 libegl1 libglib2.0-0 libfontconfig1 libfreetype6 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 \
libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxrender1 libxi6"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing the system libraries Qt needs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    echo "==> Qt needs system libraries; installing with sudo"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    echo "warning: Qt system libraries are missing; install: $pkgs" >&2
  fi
fi
