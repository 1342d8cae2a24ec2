#!/usr/bin/env bash
# The GPU job: the same suite on a machine with a CUDA device, where every GPU test must
# run. XPOPT_REQUIRE_GPU=1 turns each "no usable GPU" skip into a failure, and the gpu
# marker run below fails if it selected nothing.
#   bash ci/gpu.sh            (installs the cuda12 extra first)
#   XPOPT_NO_INSTALL=1 PYTHONPATH=src bash ci/gpu.sh   (a machine with CuPy already there)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${XPOPT_NO_INSTALL:-0}" != "1" ]; then
  python -m pip install -q -e '.[test,cuda12]'
fi
export XPOPT_REQUIRE_GPU=1
python -c "import xpopt; xpopt.set_backend('cuda', strict=True); print(xpopt.backend.format_device_info(xpopt.device_info()))"
python -m pytest -rs "$@"
python -m pytest -m gpu -rs -q "$@"
