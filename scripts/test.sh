#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: CPU only, no display needed, no network at run time.
# The suite runs in .venv, installed from requirements.lock (the versions users get).
#
#   --latest  the same suite against the newest published version of every dependency (pyproject.toml's
#             upper bounds lifted; torch keeps its pin), in .venv-latest, so that a library released
#             overnight shows its breakage here before users meet it. It touches neither .venv nor the lock.
#             The start-up version guard is off there, so the failures are the libraries' own.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ "${1:-}" = --latest ]; then
  shift
  source scripts/lock-tools.sh
  mkdir -p build/locks
  lock_uv >/dev/null
  compile_lock build/locks/latest.txt --override "$(unbounded_overrides)"
  echo "==> the newest versions (build/locks/latest.txt):"
  lock_summary build/locks/latest.txt | sed 's/^/    /'
  venv=.venv-latest
  export LORA_STUDIO_LOCK=build/locks/latest.txt LORA_STUDIO_SKIP_VERSION_CHECK=1
fi
LORA_STUDIO_VENV=$venv bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Tests run in parallel processes (pytest-xdist), one per core up to 4; LORA_STUDIO_TEST_WORKERS=0 runs them in
# this process only (for a debugger or -s).
workers=${LORA_STUDIO_TEST_WORKERS:-$("$venv/bin/python" -c 'import os; print(min(4, os.cpu_count() or 1))')}
# torch in each of them gets its share of the cores, not all of them (two workers each spinning two threads on
# two cores are slower than one thread each)
share=${OMP_NUM_THREADS:-$("$venv/bin/python" -c "import os; print(max(1, (os.cpu_count() or 1) // max(1, $workers)))")}
# The tests marked `serial` hold a wall-clock bound (cancel within 2 s, quit within 5 s): they run afterwards, alone.
status=0
OMP_NUM_THREADS=$share LORA_STUDIO_TEST_PHASE=parallel "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=15 -n "$workers" "$@" \
  || status=$?
[ "$status" -eq 5 ] && status=0  # "no tests collected": the selection had only serial ones
serial=0
LORA_STUDIO_TEST_PHASE=serial "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" || serial=$?
[ "$serial" -eq 5 ] && serial=0
exit $(( status > serial ? status : serial ))
