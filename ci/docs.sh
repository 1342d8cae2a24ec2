#!/usr/bin/env bash
# The docs job: the documentation site and the examples, so that neither can rot.
# Expects xpopt installed with the docs extra (pip install -e '.[docs]'; the examples' CuPy
# stand-in test also needs g++, as the test suite does).
# 1. mkdocs build --strict into a temporary folder: a broken API reference (a name that no
#    longer exists, a docstring mkdocstrings cannot parse), a dead link or a missing page fails.
# 2. the tutorial's figure script, in full (about 10 s), into a temporary folder: the result
#    tables it writes must equal the ones committed in docs/figures/, which the tutorial shows
#    (a change of xpopt's numbers, or of the script, shows up here; regenerate with
#    `python docs/make_figures.py` and commit the PNGs and tables).
# 3. every script in examples/, on few epochs (XPOPT_EXAMPLE_EPOCHS); each exits non-zero
#    when its result is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null; then
    echo "ci/docs.sh: the docs extra is not installed: python -m pip install -e '.[docs]'" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export NO_MKDOCS_2_WARNING=1  # Material's notice about its successor, not a build warning

echo "== mkdocs build --strict"
python -m mkdocs build --strict --site-dir "$tmp/site"

echo "== docs/make_figures.py (into a temporary folder; its tables against docs/figures/)"
python docs/make_figures.py --out "$tmp/figures" > /dev/null
for table in results-section6.txt results-decay.txt; do
    diff -u "docs/figures/$table" "$tmp/figures/$table"
done

export XPOPT_EXAMPLE_EPOCHS="${XPOPT_EXAMPLE_EPOCHS:-200}"
for example in examples/*.py; do
    echo "== $example (XPOPT_EXAMPLE_EPOCHS=$XPOPT_EXAMPLE_EPOCHS)"
    python "$example"
done
echo "docs and examples: ok"
