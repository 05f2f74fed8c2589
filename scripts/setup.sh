#!/usr/bin/env bash
# Create or reuse .venv and install LoRA Studio with its GUI and test extras.
# torch is pinned (2.13.0): an unpinned torch would pull a multi-GB CUDA build on machines that want CPU,
# while on an NVIDIA machine the same pin resolves to the CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "LoRA Studio needs Python 3.10 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.lora-studio-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing LoRA Studio and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --upgrade --quiet pip
  .venv/bin/python -m pip install --progress-bar on -e ".[gui,test,train-extras,caption]"
  touch "$stamp"
fi

# Qt needs a few system libraries that bare Linux images lack; install them when we can.
qt_missing() {
  local qt
  qt=$(.venv/bin/python -c 'import PySide6, os; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))' 2>/dev/null) || return 1
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
