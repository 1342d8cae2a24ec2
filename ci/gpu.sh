#!/usr/bin/env bash
# The GPU job, for users and maintainers with a CUDA device (CI has none): the same suite on
# real CuPy (--cupy=real), where every GPU test must run. XPOPT_REQUIRE_GPU=1 turns each
# "no usable GPU" skip into a failure, and the marker runs below fail if they select nothing.
#   bash ci/gpu.sh            (installs the cuda12 extra first)
#   XPOPT_NO_INSTALL=1 PYTHONPATH=src bash ci/gpu.sh   (a machine with CuPy already there)
#
# What only this job checks (the CPU job runs the GPU code path on the stand-in of
# xpopt.testing, which cannot show these):
# - real_gpu tests: timings and the memory pool;
# - real CuPy's reductions, exp/log (CUDA's libm) and cuBLAS in the passes: the parity
#   tests hold them to NumPy within tolerance, the optimizer kernels bit for bit;
# - the device branches of backend.device_info / synchronize against a real driver;
# - the bench suite's GPU contestants with real timings (python -m pytest bench/).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${XPOPT_NO_INSTALL:-0}" != "1" ]; then
  python -m pip install -q -e '.[test,cuda12]'
fi
export XPOPT_REQUIRE_GPU=1
python -c "import xpopt; xpopt.set_backend('cuda', strict=True); print(xpopt.backend.format_device_info(xpopt.device_info()))"
python -m pytest --cupy=real -rs "$@"
python -m pytest --cupy=real -m "gpu or real_gpu" -rs -q "$@"

# Lines only a real CUDA runtime reaches (not covered by the CPU job's coverage report):
# - backend._probe_cuda_uncached: a driver that loads but reports zero devices;
# - xpopt.distributed's NCCL collective (cupy.cuda.nccl), run below on two GPUs.
if python -c "import sys, cupy; sys.exit(cupy.cuda.runtime.getDeviceCount() < 2)" 2>/dev/null; then
  python -m pip install -q mpi4py mpich nvidia-nccl-cu12
  mpiexec -n 2 python -m mpi4py -m xpopt.distributed --backend cuda --strict --epochs 300
  mpiexec -n 2 python -m mpi4py -m xpopt.distributed --backend cuda --strict --epochs 300 --dtype float32
else
  echo "ci/gpu.sh: fewer than two GPUs, the NCCL run is skipped (needs 2)"
fi
