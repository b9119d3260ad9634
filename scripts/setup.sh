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
  # --no-compile: pip would byte-compile all ~14,000 modules of the ~200 packages (half of
  # its time here: 86 → 53 s for the lock); the warm-up below compiles only what the stages use.
  # torch is pinned to 2.13.0; where no local CPU wheel is configured for pip,
  # take the CPU build from PyTorch's index instead of PyPI's multi-GB CUDA build.
  if ! .venv/bin/python -m pip install -q --no-compile torch==2.13.0 --no-deps --only-binary=:all: --no-index 2>/dev/null; then
    .venv/bin/python -m pip install -q --no-compile torch==2.13.0 --no-deps \
      ${SEGREPRO_TORCH_INDEX:+--index-url "$SEGREPRO_TORCH_INDEX"}
  fi
  .venv/bin/python -m pip install -q --no-compile -r requirements.lock
  .venv/bin/python -m pip install -q --no-compile --no-deps -e .
  # Write .pyc into .venv for the modules the stages import (~4,000 files, ~16 s), even where
  # PYTHONDONTWRITEBYTECODE is set (as on this project's machines): without them every stage
  # recompiles its imports, ~7 s per train/evaluate process.
  PYTHONDONTWRITEBYTECODE= .venv/bin/python -c 'import importlib, sys
for name in sys.argv[1:]: importlib.import_module(name)' \
    torch torch._inductor.config dvclive dvc.repo papermill nbconvert ipykernel.kernelapp seaborn
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
# The CamVid mirror beside the checkout (air-gapped machines, CI) unless told otherwise.
if [ -z "${SEGREPRO_CAMVID_MIRROR:-}" ] && [ -d "$root/../shared/datasets/camvid/CamVid" ]; then
  export SEGREPRO_CAMVID_MIRROR="$root/../shared/datasets/camvid"
fi
