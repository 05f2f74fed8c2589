#!/usr/bin/env bash
# LoRA Studio launcher for Linux. Double-click it (or run it): the first time it creates the Python
# environment in .venv and installs LoRA Studio with visible progress (a few minutes, about 2 GB), then
# opens the app. Later runs open the app directly.
#
# Started from a file manager or the desktop entry without a terminal, a first run re-opens itself in a
# terminal window so the installation can be watched (and its errors read).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

TORCH_VERSION=2.13.0  # the pin from pyproject.toml: CUDA build on NVIDIA machines, small CPU build elsewhere
stamp=.venv/.lora-studio-app-installed

installed() {  # our stamp, or scripts/setup.sh's: a copy of the lock that was installed
  [ -x .venv/bin/python ] || return 1
  for s in "$stamp" .venv/.lora-studio-installed; do
    if cmp -s requirements.lock "$s"; then return 0; fi
  done
  return 1
}

qt_missing_libs() {  # the system libraries Qt needs that minimal Linux installs lack
  local qt
  qt=$(.venv/bin/python -c 'import PySide6, os; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))' 2>/dev/null) || return 1
  ldd "$qt"/lib/libQt6Gui.so.* "$qt"/lib/libQt6Widgets.so.* "$qt"/plugins/platforms/libqxcb.so 2>/dev/null |
    awk '/not found/ {print $1}' | sort -u
}

in_terminal() { [ -t 1 ]; }

reopen_in_terminal() {
  local self="$here/$(basename "$0")"
  for term in x-terminal-emulator gnome-terminal konsole xfce4-terminal kitty alacritty xterm; do
    if command -v "$term" >/dev/null 2>&1; then
      case "$term" in
        gnome-terminal) exec "$term" -- bash "$self" "$@" ;;
        *) exec "$term" -e bash "$self" "$@" ;;
      esac
    fi
  done
  command -v notify-send >/dev/null && notify-send "LoRA Studio" "Open a terminal and run: bash '$self' (first-time setup)"
  exit 1
}

fail() {
  echo
  echo "Setup did not finish: $*" >&2
  echo "Fix the problem above and double-click the launcher again; it continues where it stopped." >&2
  if in_terminal; then read -r -p "Press Enter to close this window." _; fi
  exit 1
}

install() {
  echo "LoRA Studio: first-time setup (a few minutes; about 2 GB is downloaded)"
  local py=""
  for cand in "${PYTHON:-}" python3.12 python3.11 python3.10 python3; do
    if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      py="$cand"; break
    fi
  done
  [ -n "$py" ] || fail "LoRA Studio needs Python 3.10 or newer. Install it (e.g. sudo apt install python3 python3-venv) and try again."
  echo "==> [1/3] creating the environment in $root/.venv (Python: $("$py" --version 2>&1))"
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv || fail "could not create .venv (on Debian/Ubuntu: sudo apt install python3-venv)"
  fi
  echo "==> [2/3] installing PyTorch $TORCH_VERSION (the largest download)"
  .venv/bin/python -m pip install --progress-bar on "torch==$TORCH_VERSION" || fail "could not install PyTorch"
  echo "==> [3/3] installing LoRA Studio and the tested versions of its other libraries (requirements.lock)"
  .venv/bin/python -m pip install --progress-bar on -r requirements.lock || fail "could not install the libraries"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . || fail "could not install LoRA Studio"
  missing=$(qt_missing_libs || true)
  if [ -n "$missing" ]; then
    echo "Qt needs system libraries that are missing: $missing" >&2
    echo "On Debian/Ubuntu: sudo apt install libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1" >&2
  fi
  cp requirements.lock "$stamp"
  echo "==> done. Opening LoRA Studio…"
}

if ! installed; then
  in_terminal || reopen_in_terminal "$@"
  install
fi
exec .venv/bin/python -m ui.app "$@"
