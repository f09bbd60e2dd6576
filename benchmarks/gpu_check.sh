#!/usr/bin/env bash
# make gpu-check: the GPU check on a CUDA machine (results: benchmarks/results/gpu_check.<machine>.{json,md}).
# Uses the Python that has CUDA torch (PYTHON, default python3; not the CPU-only .venv of `make setup`).
# Offline-friendly: wheels carried in .whl/ (PyAV, ...) are installed first, then this checkout as an
# editable install without build isolation (the package-dir mapping needs an install).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "error: gpu-check needs a CUDA GPU and CUDA torch; $PY sees none" >&2
  exit 2
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps .whl/*.whl
fi
if ! "$PY" -c "import stanet_rt.training, stanet_rt.benchmarks" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
fi
export PYTHONUNBUFFERED=1
exec timeout 480 "$PY" -m stanet_rt.benchmarks.gpu_check "$@"
