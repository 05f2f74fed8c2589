#!/usr/bin/env bash
# Set up (first time) and open LoRA Studio on the demo project. Without a display, train the demo
# headless in the terminal instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname -s)" = Darwin ]; then
  exec .venv/bin/lora-studio gui --demo "$@"
fi
echo "==> no display found: training the demo project headless"
exec .venv/bin/lora-studio demo --out "${LORA_STUDIO_DEMO_DIR:-lora-studio-demo}" "$@"
