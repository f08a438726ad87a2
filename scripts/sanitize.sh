#!/usr/bin/env bash
# Build fastrelu with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) in a
# temporary copy of this working tree -- the normal in-place build in src/ is
# not touched -- and run the test suite there with the ASan runtime preloaded
# into the (uninstrumented) Python interpreter. Fails on any sanitizer report.
#
#   scripts/sanitize.sh              # the whole test suite
#   scripts/sanitize.sh --quick      # a subset for CI (< 3 minutes)
#   scripts/sanitize.sh --keep       # keep the temporary copy (path printed)
#   scripts/sanitize.sh --keep-going # UBSan: report every error, fail at the end
#                                    # (reports of subprocesses started by tests are
#                                    # then only seen if the test checks stderr)
#   scripts/sanitize.sh -- tests/test_ops.py -k int8    # your own pytest arguments
#
# Leak detection is off (ASAN_OPTIONS=detect_leaks=0): CPython itself does not
# free everything at exit. PYTHONMALLOC=malloc routes Python's small objects
# through ASan's allocator as well. Subprocesses started by the tests inherit
# LD_PRELOAD and the options, so they are checked too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
QUICK=0
KEEP=0
UBSAN_HALT=1
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --keep-going) UBSAN_HALT=0 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

command -v gcc >/dev/null || { echo "gcc is required" >&2; exit 2; }
ASAN_LIB=$(gcc -print-file-name=libasan.so)
[ -e "$ASAN_LIB" ] || { echo "no ASan runtime (gcc -print-file-name=libasan.so -> $ASAN_LIB)" >&2; exit 2; }
# C++ extensions (PyTorch, in the ecosystem tests) throw exceptions: ASan intercepts
# __cxa_throw and needs libstdc++ loaded at start-up, which python itself is not
PRELOAD="$ASAN_LIB"
STDCXX=$(gcc -print-file-name=libstdc++.so.6)
[ -e "$STDCXX" ] && PRELOAD="$PRELOAD $STDCXX"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastrelu-sanitize.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== copy of the working tree -> $WORK"
cd "$ROOT"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and untracked files, without ignored ones (no build products)
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -f "$f" ] && cp --parents -- "$f" "$WORK/"
    done
else
    cp -r "$ROOT/." "$WORK/"
    rm -rf "$WORK/build" "$WORK/.venv"
    find "$WORK/src" \( -name '*.so' -o -name '*.c' \) -delete
fi

echo "== build with -fsanitize=address,undefined"
cd "$WORK"
export CC=${CC:-gcc}
t0=$(date +%s)
FASTRELU_EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g" \
FASTRELU_EXTRA_LDFLAGS="-fsanitize=address,undefined" \
    "$PYTHON" setup.py -q build_ext --inplace -j 2 > build.log 2>&1 \
    || { cat build.log; echo "sanitizer build failed" >&2; exit 1; }
echo "   built in $(( $(date +%s) - t0 )) s"
for so in src/fastrelu/*.so; do
    deps=$(ldd "$so")      # (not piped into grep -q: SIGPIPE + pipefail)
    if [[ "$deps" != *libasan* ]]; then
        echo "$so is not linked against libasan: the flags did not reach the build" >&2
        exit 1
    fi
done

if [ ${#PYTEST_ARGS[@]} -eq 0 ]; then
    if [ "$QUICK" = 1 ]; then
        PYTEST_ARGS=(tests/test_isa_paths.py tests/test_fuzz.py
                     "tests/test_concurrency.py::test_eight_threads_every_op"
                     "tests/test_concurrency.py::test_eight_threads_with_low_thresholds")
        for f in tests/test_overlap.py tests/test_special_values.py tests/test_pool.py; do
            [ -f "$f" ] && PYTEST_ARGS+=("$f")
        done
        # the fused kernels: every shape and axis, threads and levels, every out
        PYTEST_ARGS+=("tests/test_fused.py::test_every_shape_and_axis"
                      "tests/test_fused.py::test_threads_and_levels_give_the_same_bits"
                      "tests/test_fused.py::test_out")
        # the ml_dtypes rows and conversions (skipped without ml_dtypes)
        PYTEST_ARGS+=("tests/test_ml_dtypes.py::test_every_bit_pattern"
                      "tests/test_ml_dtypes.py::test_levels_and_threads")
    else
        PYTEST_ARGS=(tests)
    fi
fi

echo "== pytest ${PYTEST_ARGS[*]} (ASan + UBSan)"
LOG="$WORK/sanitize.log"
t0=$(date +%s)
set +e
env LD_PRELOAD="$PRELOAD" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_odr_violation=0:print_summary=1" \
    UBSAN_OPTIONS="halt_on_error=$UBSAN_HALT:print_stacktrace=1" \
    PYTHONMALLOC=malloc \
    PYTHONPATH="$WORK/src" \
    PYTHONDONTWRITEBYTECODE=1 \
    "$PYTHON" -m pytest -q -p no:cacheprovider --capture=sys "${PYTEST_ARGS[@]}" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "   tests ran in $(( $(date +%s) - t0 )) s, pytest exit status $status"

reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|UndefinedBehaviorSanitizer|ERROR: LeakSanitizer" "$LOG" || true)
if [ "$reports" != 0 ]; then
    echo "FAIL: $reports sanitizer report line(s):" >&2
    echo "distinct reports:" >&2
    grep -ohE "[^ ]+:[0-9]+:[0-9]+: runtime error: .*|ERROR: AddressSanitizer: [^ ]+" "$LOG" \
        | sed 's/^\.*//' | sort | uniq -c >&2
    grep -nE -A30 "ERROR: AddressSanitizer|runtime error:" "$LOG" | head -80 >&2
    echo "full log: $LOG" >&2
    KEEP=1
    exit 1
fi
if [ "$status" != 0 ]; then
    echo "FAIL: the test suite failed under the sanitizers (status $status)" >&2
    exit "$status"
fi
echo "OK: no sanitizer reports"
