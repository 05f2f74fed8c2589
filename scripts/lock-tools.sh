# Shared by scripts/update-lock.sh and `scripts/test.sh --latest` (sourced, not run): the resolver and
# how the lock is made. The lock is made by uv (`uv pip compile --universal`): one file for Linux, Windows
# and macOS and every Python we support, with every direct and transitive dependency pinned.
#
# torch's CUDA libraries (nvidia-*, triton) are left out of the file on purpose: torch==2.13.0 pins each of
# them exactly in its own metadata, so they are locked all the same, and leaving them out keeps pip from
# downloading gigabytes of CUDA onto machines that use a CPU build of torch (Windows, macOS, CI).

UV_VERSION=0.13.9
TOOLS_VENV=.venv-tools
PY=${PYTHON:-python3}

# Prints the path of a uv binary of the pinned version, installing it into .venv-tools the first time.
lock_uv() {
  local py="$TOOLS_VENV/bin/python"
  [ -x "$py" ] || py="$TOOLS_VENV/Scripts/python.exe"
  if [ ! -x "$py" ]; then
    "$PY" -m venv "$TOOLS_VENV" >&2
    py="$TOOLS_VENV/bin/python"
    [ -x "$py" ] || py="$TOOLS_VENV/Scripts/python.exe"
  fi
  if ! "$py" -m uv --version 2>/dev/null | grep -q "uv $UV_VERSION"; then
    "$py" -m pip install --quiet "uv==$UV_VERSION" "tomli==2.5.0" "packaging==26.4" >&2
  fi
  echo "$py -m uv"
}

# compile_lock OUT [EXTRA uv ARGS...]: resolve pyproject.toml (all extras) into OUT, newest versions allowed.
compile_lock() {
  local out=$1; shift
  local uv first cuda=()
  uv=$(lock_uv)
  first=$(mktemp)
  # 1st pass: find which CUDA packages torch brings on Linux, to leave them out in the 2nd
  $uv pip compile pyproject.toml --all-extras --universal --python-version 3.10 --upgrade --quiet \
      --no-header --no-annotate -o "$first" "$@"
  for name in $(grep -oiE '^(nvidia-[a-z0-9-]+|triton|cuda-[a-z0-9-]+)' "$first" | sort -u); do
    cuda+=(--no-emit-package "$name")
  done
  rm -f "$first"
  $uv pip compile pyproject.toml --all-extras --universal --python-version 3.10 --upgrade --quiet \
      --custom-compile-command "bash scripts/update-lock.sh" "${cuda[@]}" -o "$out" "$@"
}

# The newest versions published, ignoring our upper bounds (torch stays pinned): what users would get
# tomorrow if we lifted the bounds. Writes an override file for uv and prints its path.
unbounded_overrides() {
  local tools_py="$TOOLS_VENV/bin/python" out
  [ -x "$tools_py" ] || tools_py="$TOOLS_VENV/Scripts/python.exe"
  out=$(mktemp)
  "$tools_py" scripts/unbounded_requirements.py pyproject.toml > "$out"
  echo "$out"
}

# Names and versions of the packages the closing notes and the guard care about, from a lock file.
lock_summary() {
  grep -iE '^(torch|diffusers|transformers|peft|accelerate|safetensors|pyside6-essentials|bitsandbytes|huggingface-hub|tokenizers|numpy)==' "$1"
}
