#!/usr/bin/env bash
# The CPU job: what .ci/run calls on a machine without a GPU.
# 1. the README's test command: installs the test extra and runs the suite with branch
#    coverage. GPU tests run on the strict CuPy stand-in of xpopt.testing (--cupy=standin);
#    only the tests that need a real device (marked real_gpu) skip, with their reason.
#    Kernel compilation (NVRTC, nvcc, nvdisasm) and host-arithmetic proofs run for real.
# 2. a short smoke pass of the benchmark suite so that it cannot rot (no figures asserted).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -e '.[test]' && python -m pytest --cupy=standin --cov

bash ci/bench-smoke.sh
