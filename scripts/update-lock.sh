#!/usr/bin/env bash
# Refresh requirements.lock, the exact versions users install: resolve the newest versions that
# pyproject.toml's ranges allow into a candidate lock, install it into a separate venv (.venv-candidate),
# run the whole suite there, and replace requirements.lock only when the suite passes.
#
# To move to a newer library: `bash scripts/test.sh --latest` shows what the newest versions break; once
# they pass, raise the upper bound in pyproject.toml, run this, and commit pyproject.toml with the lock.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lock-tools.sh
mkdir -p build/locks
candidate=build/locks/candidate.txt
compile_lock "$candidate"
if cmp -s <(grep -v '^#' "$candidate") <(grep -v '^#' requirements.lock); then
  echo "==> requirements.lock already holds the newest allowed versions"
  exit 0
fi
echo "==> changes (requirements.lock → candidate):"
diff <(grep -E '^[a-z0-9]' requirements.lock) <(grep -E '^[a-z0-9]' "$candidate") | grep -E '^[<>]' | sed 's/^/    /' || true
LORA_STUDIO_VENV=.venv-candidate LORA_STUDIO_LOCK=$candidate bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false LORA_STUDIO_LOCK=$candidate
if .venv-candidate/bin/python -m pytest -q -p no:cacheprovider "$@"; then
  cp "$candidate" requirements.lock
  echo "==> the suite passed: requirements.lock updated; commit it (with pyproject.toml if you changed it)"
else
  echo "==> the suite failed with the candidate versions: requirements.lock is unchanged" >&2
  exit 1
fi
