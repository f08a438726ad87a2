#!/usr/bin/env bash
# The sdist is complete: build it with `python -m build --sdist`, install it
# into a fresh virtual environment (compiling it there, as pip does for a user
# without a wheel), unpack it, and run its own test suite and its docs build
# (sphinx -W) from the unpacked tree against the installed package.
#
#   bash scripts/check_sdist.sh [--quick]     (--quick: the core-marked tests)
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python -m pip install --quiet build
python -m build --sdist --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/fastrelu-*.tar.gz)
echo "sdist: $(basename "$SDIST") ($(tar tzf "$SDIST" | wc -l) files)"
if tar tzf "$SDIST" | grep -E '\.(c|so)$'; then
    echo "the sdist ships build products (above)"; exit 1
fi

python -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$SDIST[test,docs]"
tar xzf "$SDIST" -C "$WORK"
cd "$WORK"/fastrelu-*/
rm -rf src    # the tests must see the installed package, not the sources
if [ "$QUICK" = 1 ]; then
    "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider -m "core and not slow"
else
    "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider
fi
"$WORK/venv/bin/python" -m sphinx -W -q -b html docs "$WORK/html"
echo "sdist check passed"
