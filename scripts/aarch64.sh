#!/usr/bin/env bash
# fastrelu on aarch64 (64-bit Arm: Graviton, Ampere, Apple silicon under Linux),
# under emulation on an x86-64 Linux host:
#
# 1. an arm64 Debian userland made with debootstrap from Debian's packages
#    (kept in $FASTRELU_ARM64_ROOT between runs), run by qemu-user through
#    binfmt_misc;
# 2. fastrelu built there with its GCC, from the files of this tree;
# 3. the loop kernels checked for NEON: every loop function of the loop module
#    must hold vector (v-register) instructions (scripts/check_baseline_isa.py),
#    and GCC's -fopt-info-vec report is kept in the log;
# 4. show_config() checked for x86 wording, then the tests run there.
#
#   sudo bash scripts/aarch64.sh            the core suite and the thread tests
#   sudo bash scripts/aarch64.sh --quick    CI's bound: a few registry suites
#   sudo bash scripts/aarch64.sh --prepare  only the userland and its Python
#                                           packages (CI starts it early, in
#                                           the background)
#
# Needs root (chroot, binfmt_misc), debootstrap, qemu-user-static and
# binfmt-support (Debian/Ubuntu: apt-get install debootstrap qemu-user-static
# binfmt-support). The Python packages the build and tests need are fetched on
# the host as aarch64 wheels and installed in the userland without network.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-full}
case "$MODE" in full|--quick|--prepare) ;; *) echo "unknown argument: $MODE" >&2; exit 2 ;; esac
ROOT=${FASTRELU_ARM64_ROOT:-/var/tmp/fastrelu-arm64}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECONDS=0
log() { echo "== aarch64: $* (t=${SECONDS}s)"; }

# qemu-user for arm64 executables (the F flag: the interpreter is opened now,
# so it works inside the chroot too)
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
    || { echo "qemu-aarch64 is not registered with binfmt_misc (qemu-user-static?)" >&2; exit 2; }

if [ ! -e "$ROOT/.ready" ]; then
    log "debootstrap $SUITE arm64 into $ROOT"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,libc6-dev,binutils,file \
        "$SUITE" "$ROOT" "$MIRROR" > /tmp/fastrelu-debootstrap.log 2>&1 \
        || { tail -30 /tmp/fastrelu-debootstrap.log; exit 1; }
    touch "$ROOT/.ready"
fi
[ "$(chroot "$ROOT" uname -m)" = aarch64 ] || { echo "the userland does not run as aarch64" >&2; exit 1; }

log "aarch64 wheels of the build and test requirements (fetched on the host)"
PYVER=$(chroot "$ROOT" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
rm -rf "$ROOT/wheels" && mkdir -p "$ROOT/wheels"
REQUIREMENTS=("numpy>=2.0" "Cython>=3.1" "setuptools>=77" pytest hypothesis threadpoolctl)
python3 -m pip download --quiet --only-binary=:all: --implementation cp \
    --python-version "$PYVER" --platform manylinux2014_aarch64 \
    --platform manylinux_2_28_aarch64 --dest "$ROOT/wheels" "${REQUIREMENTS[@]}" \
    > /tmp/fastrelu-arm64-wheels.log 2>&1 || { cat /tmp/fastrelu-arm64-wheels.log; exit 1; }
if [ ! -x "$ROOT/venv/bin/python" ]; then
    chroot "$ROOT" python3 -m venv /venv
fi
chroot "$ROOT" /venv/bin/python -m pip install --quiet --upgrade --no-index \
    --find-links /wheels "${REQUIREMENTS[@]}"
if [ "$MODE" = --prepare ]; then log "userland ready"; exit 0; fi

log "copy the tree and build with $(chroot "$ROOT" gcc --version | head -1)"
rm -rf "$ROOT/fastrelu" && mkdir "$ROOT/fastrelu"
(cd "$SRC" && tar cf - --exclude=.git --exclude=.venv --exclude=build --exclude='*.so' \
    --exclude='*.c' --exclude='docs/_build' .) | tar xf - -C "$ROOT/fastrelu"
mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/venv/bin:/usr/bin:/bin \
    LANG=C.UTF-8 /bin/sh -c "cd /fastrelu && $*"; }
in_root "FASTRELU_EXTRA_CFLAGS='-fopt-info-vec-optimized=/fastrelu/vec.txt' \
    python setup.py -q build_ext --inplace -j 2" > "$ROOT/build.log" 2>&1 \
    || { tail -40 "$ROOT/build.log"; exit 1; }
log "built; GCC vectorized $(grep -c 'loop vectorized' "$ROOT/fastrelu/vec.txt" || true) loops"

log "the loop kernels use NEON"
in_root "python scripts/check_baseline_isa.py src/fastrelu"

log "show_config"
in_root "PYTHONPATH=src python -c 'import fastrelu; fastrelu.show_config()'" | tee "$ROOT/config.txt"
if grep -i -E "x86|avx|sse" "$ROOT/config.txt"; then
    echo "show_config() talks about x86 on aarch64 (above)" >&2; exit 1
fi

PYTEST="PYTHONPATH=src python -m pytest -q -p no:cacheprovider"
if [ "$MODE" = --quick ]; then
    in_root "$PYTEST tests/test_ops.py tests/test_special_values.py -k 'float32 or float16 or int8'"
else
    in_root "$PYTEST -m 'core and not slow'"
fi
in_root "$PYTEST tests/test_thread_control.py tests/test_threads.py"
log "passed"
