"""Every kernel path gives the reference's bits: for each instruction-set level
this CPU runs (switched in-process with ``_engine.use_isa``), 1 and 2 threads,
every operation of the registry and dtype, a few sizes at the vector edges
and one of more than two thread chunks, contiguous (fast path, streaming
stores) and strided / byte-swapped / unaligned (ufunc path), in place, out of
place (outputs at every alignment inside guarded buffers: nothing outside
them may be written) and with ``out`` partially overlapping an input.

The ``threaded`` fixture lowers the dispatch thresholds to zero, so that every
call releases the GIL, streams its out-of-place output and is split between
the threads when its output spans more than one thread chunk (64 KiB): the
largest size does, whatever its address.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine
from helpers import (OPS, assert_same, byteswapped, call, call_inplace, call_ufunc, expected,
                     op_dtype_params, op_id, param_cycle, random_values, threaded_size, to_native,
                     unaligned)

ROOT = Path(__file__).resolve().parents[1]
# the fastrelu under test: installed or in-tree
PACKAGE_DIR = Path(fastrelu.__file__).resolve().parent
LEVELS = _engine.supported_isa_levels()
SIZES = (0, 1, 2, 3, 7, 8, 15, 17, 31, 33, 63, 65, 129, 257)
SENTINEL = 0xA5
INITIAL_THRESHOLDS = _engine.thresholds()
INITIAL_THREADS = fastrelu.get_num_threads()

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(params=LEVELS)
def isa(request):
    previous = _engine.use_isa(request.param)
    try:
        yield request.param
    finally:
        _engine.use_isa(previous)


@pytest.fixture
def restore_threads():
    previous = fastrelu.set_num_threads(None)
    fastrelu.set_num_threads(previous)
    try:
        yield
    finally:
        fastrelu.set_num_threads(previous)


class Guarded:
    """Arrays placed at an element offset inside a buffer filled with a sentinel;
    ``check()`` asserts nothing outside the arrays was written."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.parts = []

    def contiguous(self, n, offset, fill=None):
        buf = np.full((n + offset + 9) * self.dtype.itemsize, SENTINEL, np.uint8)
        a = buf.view(self.dtype)[offset:offset + n]
        if fill is not None:
            a[...] = fill
        self.parts.append((buf, offset * self.dtype.itemsize, n * self.dtype.itemsize, 1))
        return a

    def strided(self, n, step, fill=None):
        """Every ``step``-th element (negative: reversed) of a guarded buffer."""
        m = n * abs(step) + 2
        buf = np.full(m * self.dtype.itemsize, SENTINEL, np.uint8)
        full = buf.view(self.dtype)
        a = full[1:1 + n * step:step] if step > 0 else full[-2::step][:n]
        if fill is not None:
            a[...] = fill
        self.parts.append((buf, None, None, a))
        return a

    def check(self):
        for buf, start, nbytes, view in self.parts:
            if start is not None:
                assert (buf[:start] == SENTINEL).all(), "written before the array"
                assert (buf[start + nbytes:] == SENTINEL).all(), "written after the array"
            else:
                mask = np.ones(buf.size, bool)
                base = buf.__array_interface__["data"][0]
                first = view.__array_interface__["data"][0] - base
                starts = first + np.arange(view.size) * view.strides[0]
                for k in range(view.dtype.itemsize):
                    mask[starts + k] = False
                assert (buf[mask] == SENTINEL).all(), "written between strided elements"


def check_size(op, dt, n, params, rng):
    """``op`` on ``n`` random elements of ``dt`` along every path, against the
    reference computed once."""
    arrays0 = tuple(random_values(rng, dt, n) for _ in op.inputs)
    want = expected(op, arrays0, params)
    gd = Guarded(dt)
    off = n % 9

    def fresh(fill):
        return gd.contiguous(n, off, fill)

    # --- contiguous, out of place (fast path; streaming stores) ---------------------------
    arrays = tuple(gd.contiguous(n, (n * (3 + 4 * i)) % 5, a) for i, a in enumerate(arrays0))
    assert_same(call(op, arrays, params), want, "new")
    assert_same(call_ufunc(op, arrays, params), want, "ufunc")
    for what, fn in (("function", call), ("ufunc", call_ufunc)):
        o = fresh(0)
        assert fn(op, arrays, params, out=o) is o, what
        assert_same(o, want, f"{what} out=")
    for a, a0 in zip(arrays, arrays0):
        assert_same(a, a0, "an input was modified")

    # --- contiguous, in place: out is an input --------------------------------------------
    for i, name in enumerate(op.inputs):
        for what, fn in (("function", call), ("ufunc", call_ufunc)):
            inputs = list(arrays)
            inputs[i] = fresh(arrays0[i])
            assert fn(op, tuple(inputs), params, out=inputs[i]) is inputs[i]
            assert_same(inputs[i], want, f"{what} out={name}")
    if op.inplace:
        a = fresh(arrays0[0])
        assert call_inplace(op, a, params) is a
        assert_same(a, want, "in place")

    # --- strided and reversed (strided kernels; the ufunc path for 2-D) -------------------
    strided = tuple(gd.strided(n, step, a) for step, a in zip((2, -3), arrays0))
    assert_same(call(op, strided, params), want, "strided")
    mixed = arrays[:-1] + strided[-1:]                # grad_output contiguous, x strided
    assert_same(call(op, mixed, params), want, "mixed")
    for operands in (strided, arrays):
        o = gd.strided(n, 3 if n % 2 else -2, 0)
        assert call(op, operands, params, out=o) is o
        assert_same(o, want, "strided out=")
    if op.inplace:
        for step in (2, -1, -3):
            a = gd.strided(n, step, arrays0[0])
            assert call_inplace(op, a, params) is a
            assert_same(a, want, f"in place, step {step}")
    a = gd.strided(n, -2, arrays0[0])
    inputs = (a,) + strided[1:]
    assert call(op, inputs, params, out=a) is a
    assert_same(a, want, f"strided out={op.inputs[0]}")
    for a, a0 in zip(strided, arrays0):
        assert_same(a, a0, "a strided input was modified")

    # --- out partially overlapping an input (NumPy hands the loop an overlap it
    # considers safe for one forward pass: out before the input) --------------------------
    for k in (1, 3, 64):
        for out_first in (True, False):
            src, dst = ((slice(k, None), slice(None, -k)) if out_first
                        else (slice(None, -k), slice(k, None)))
            for i in range(op.arity):
                a = fresh(arrays0[i])
                inputs = [a0[dst] for a0 in arrays0]
                inputs[i] = a[src]
                expect = expected(op, tuple(inputs[j] if j != i else arrays0[i][src]
                                            for j in range(op.arity)), params)
                call(op, tuple(inputs), params, out=a[dst])
                assert_same(a[dst], expect, f"overlap k={k} on {op.inputs[i]}")
        if n > 2 * k:
            a = fresh(arrays0[-1])                      # strided overlap
            inputs = tuple(a0[:n - 2 * k:2] for a0 in arrays0[:-1]) + (a[2 * k::2],)
            expect = expected(op, inputs[:-1] + (arrays0[-1][2 * k::2],), params)
            call(op, inputs, params, out=a[:n - 2 * k:2])
            assert_same(a[:n - 2 * k:2], expect, f"strided overlap k={k}")

    # --- byte-swapped and unaligned (NumPy buffers them: contiguous loops) -----------------
    if np.dtype(dt).itemsize > 1:
        assert_same(call(op, tuple(byteswapped(a) for a in arrays0), params), want, "swapped")
        assert_same(call(op, tuple(unaligned(a) for a in arrays0), params), want, "unaligned")
        o = unaligned(np.zeros(n, dt))
        assert call(op, arrays, params, out=o) is o
        assert_same(o, want, "unaligned out=")
        if op.inplace:
            for a in (byteswapped(arrays0[0]), unaligned(arrays0[0])):
                assert call_inplace(op, a, params) is a
                assert_same(to_native(a), want, "in place, swapped or unaligned")
    gd.check()


@pytest.mark.usefixtures("threaded")
@pytest.mark.parametrize("threads", [1, 2], ids=lambda n: f"{n}thr")
@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_every_path_matches_reference(isa, threads, op, dtype):
    """Every op x dtype on every path at the vector edges and at a size of more
    than two thread chunks, for each level and 1 or 2 threads."""
    fastrelu.set_num_threads(threads)
    assert _engine.ISA == isa and _engine.build_info()["isa"] == isa
    assert fastrelu.get_num_threads() == threads
    rng = np.random.default_rng([LEVELS.index(isa), threads, OPS.index(op),
                                 np.dtype(dtype).num])
    sizes = SIZES + (threaded_size(dtype),)
    for n, params in zip(sizes, param_cycle(op, dtype, len(sizes))):
        check_size(op, dtype, n, params, rng)


@pytest.mark.parametrize("op, dtype", op_dtype_params(dtypes=("float16", "int8", "uint64")),
                         ids=op_id)
def test_default_thresholds_match_reference(isa, op, dtype):
    """With the shipped thresholds and 2 threads: a size above the parallel
    and no-GIL thresholds (``_engine.thresholds()``) but below the streaming
    one, contiguous, reversed and in place."""
    thresholds = _engine.thresholds()
    n = 3 * thresholds["parallel_min_bytes"] // np.dtype(dtype).itemsize + 13
    assert thresholds["nogil_min_bytes"] < n * np.dtype(dtype).itemsize
    assert n * np.dtype(dtype).itemsize < thresholds["stream_min_bytes"]
    rng = np.random.default_rng(7)
    arrays = tuple(random_values(rng, dtype, n) for _ in op.inputs)
    (params,) = param_cycle(op, dtype, 1)
    fastrelu.set_num_threads(2)
    want = expected(op, arrays, params)
    assert_same(call(op, arrays, params), want)
    reversed_ = tuple(a[::-1] for a in arrays)
    assert_same(call(op, reversed_, params), expected(op, reversed_, params))
    target = arrays[-1].copy()
    assert call(op, arrays[:-1] + (target,), params, out=target) is target
    assert_same(target, want)


def test_use_isa_rejects_unknown_level():
    with pytest.raises(ValueError):
        _engine.use_isa("sse9")
    assert _engine.ISA == _engine._choose_isa()


ENV_X = [-1.5, -0.0, 2.0, 6.5, float("nan"), float("-inf"), 1e-40, 0.5]


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_forces_level(level):
    """FASTRELU_CPU picks the kernels at import (fresh interpreter): every op
    there gives the reference's bits."""
    code = (
        "import sys, numpy as np, fastrelu\n"
        "from math import inf, nan\n"
        "from fastrelu import _engine\n"
        "from fastrelu._registry import OPS\n"
        f"x = np.array({ENV_X!r}, np.float32)\n"
        "print(_engine.ISA, _engine.build_info()['isa'])\n"
        "for op, params in zip(OPS, eval(sys.argv[1])):\n"
        "    r = getattr(fastrelu, op.name)(*(x[::-1].copy(), x)[-op.arity:], *params)\n"
        "    print(r.tobytes().hex())\n")
    params = [param_cycle(op, "float32", 1)[0] for op in OPS]
    env = dict(os.environ, FASTRELU_CPU=level, PYTHONPATH=str(PACKAGE_DIR.parent))
    out = subprocess.run([sys.executable, "-W", "error", "-c", code, repr(params)], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    x = np.array(ENV_X, np.float32)
    want = [expected(op, (x[::-1].copy(), x)[-op.arity:], p).tobytes().hex()
            for op, p in zip(OPS, params)]
    assert out == [level, level, *want]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
@pytest.mark.skipif(not any(PACKAGE_DIR.glob("_loops_avx2*.so")),
                    reason="not an x86-64 build with per-ISA kernels")
def test_baseline_objects_have_no_avx():
    """scripts/check_baseline_isa.py: the engine, the functions, the ufuncs, the
    C API and the baseline loops are free of VEX/EVEX (AVX) instructions; the
    AVX2 / AVX-512 loops use ymm / zmm."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts/check_baseline_isa.py"),
                          str(PACKAGE_DIR)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_fixtures_restore_state():
    """The fixtures above leave the process as they found it (this test is last
    in the file, so it runs after the parametrized ones)."""
    assert _engine.ISA == _engine._choose_isa()
    assert _engine.build_info()["isa"] == _engine.ISA
    assert _engine.thresholds() == INITIAL_THRESHOLDS
    assert fastrelu.get_num_threads() == INITIAL_THREADS
