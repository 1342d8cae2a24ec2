#!/usr/bin/env bash
# The CPU job: what .ci/run calls on a machine without a GPU.
# 1. the README's test command (installs the test extra, runs the suite: GPU tests skip
#    with their reason, kernel compilation and host-arithmetic proofs run for real);
# 2. a short smoke pass of the benchmark suite so that it cannot rot (no figures asserted).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -e '.[test]' && python -m pytest

bash ci/bench-smoke.sh
