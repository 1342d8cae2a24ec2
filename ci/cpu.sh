#!/usr/bin/env bash
# The CPU job: what .ci/run calls on a machine without a GPU.
# 1. the README's test command: installs the test extra and runs the suite with branch
#    coverage. GPU tests run on the strict CuPy stand-in of xpopt.testing (--cupy=standin);
#    only the tests that need a real device (marked real_gpu) skip, with their reason.
#    Kernel compilation (NVRTC, nvcc, nvdisasm), host-arithmetic proofs and the mpiexec
#    runs of xpopt.distributed run for real.
# 2. the documentation: mkdocs build --strict, the tutorial's tables, every example.
# 3. a short smoke pass of the benchmark suite so that it cannot rot (no figures asserted).
# 4. lint and types: ruff (lint and format) over the tree, mypy over src/xpopt.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -e '.[test]' && python -m pytest --cupy=standin --cov

python -m pip install -q -e '.[docs]'
bash ci/docs.sh

bash ci/bench-smoke.sh

python -m pip install -q -e '.[lint]'
ruff check .
ruff format --check .
mypy
