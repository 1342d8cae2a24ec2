#!/usr/bin/env bash
# Smoke pass of the benchmark suite (bench/): every contestant runs once at tiny sizes
# (XPOPT_BENCH_QUICK=1), then bench/report.py renders the saved JSON. No figure is asserted:
# this only keeps the suite and the report script from rotting. Contestants without their
# package or device (CuPy without a GPU, PyTorch not installed) are skipped with the reason.
#
# Usage: ci/bench-smoke.sh            (PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

XPOPT_BENCH_QUICK=1 "$PYTHON" -m pytest bench/ -q -p no:cacheprovider \
    --benchmark-json="$out/smoke.json" --benchmark-columns=median,rounds
"$PYTHON" bench/report.py "$out/smoke.json" -o "$out/smoke.md" --no-copy-json
# The report must hold the groups that run everywhere (CPU contestants need only NumPy).
for group in "mini-batch partition" "forward + backward" "adam step" "experiment" "train step"; do
    grep -q "^### $group" "$out/smoke.md" || { echo "bench smoke: report lacks '$group'" >&2; exit 1; }
done
# The CuPy contestants once more on the stand-in of xpopt.testing: their code paths run
# (host timings of a NumPy stand-in, thrown away: never a GPU figure).
XPOPT_BENCH_QUICK=1 XPOPT_BENCH_CUPY=standin "$PYTHON" -m pytest bench/ -q -p no:cacheprovider \
    -k "cupy" --benchmark-disable
echo "bench smoke: OK"
