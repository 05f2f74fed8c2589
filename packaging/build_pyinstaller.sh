#!/usr/bin/env bash
# Build the one-folder app with PyInstaller: dist/lora-studio/ (and dist/LoRA Studio.app on macOS).
# Uses .venv (scripts/setup.sh makes it from requirements.lock, PyInstaller included).
# Then checks the result: `--version` and a headless `demo --steps 2` must work from the frozen build.
# Set NICE=1 to build at the lowest CPU priority on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=.venv/Scripts/python.exe
[ -x "$PY" ] || { echo "no .venv: run scripts/setup.sh first" >&2; exit 1; }
# the build uses the locked versions, PyInstaller included: what the suite passed with is what gets frozen
"$PY" -m pip install --quiet -r requirements.lock

prio=()
[ "${NICE:-0}" = 1 ] && prio=(nice -n 19)
start=$(date +%s)
"${prio[@]}" "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/lora-studio.spec
end=$(date +%s)

app=dist/lora-studio
exe="$app/lora-studio"
[ -x "$exe" ] || exe="$app/lora-studio.exe"
echo "==> built $app in $((end - start)) s; size: $(du -sh "$app" | cut -f1)"

echo "==> checking the frozen build"
"$exe" --version
demo_dir=$(mktemp -d)
trap 'rm -rf "$demo_dir"' EXIT
HF_HUB_OFFLINE=1 "${prio[@]}" "$exe" demo --steps 2 --quiet --out "$demo_dir/demo"
echo "==> ok: the frozen app answers --version and trains the demo headless"
