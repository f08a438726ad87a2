"""Every kernel path gives the oracle's bits: for each instruction-set level this
CPU runs (switched in-process with ``_engine.use_isa``), 1 and 2 threads, every
dtype and function, sizes 0..70 and a few thousand, contiguous (fast path,
streaming stores) and strided / byte-swapped / unaligned (ufunc path), in place,
out of place (outputs at every alignment inside guarded buffers: nothing
outside them may be written) and with ``out`` partially overlapping an input.

The dispatch thresholds are lowered to (almost) zero so that arrays of a few
thousand elements release the GIL, are split between threads (chunks start on
4 KiB boundaries, so 4097 and 9001 elements give the second thread work for
every itemsize) and use streaming stores for out-of-place relu.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
from fastrelu import _engine
from reliability_helpers import (DTYPE_NAMES, assert_bits, native, random_bits,
                                 ref_backward, ref_grad, ref_relu)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(fastrelu.__file__).resolve().parent   # the fastrelu under test:
                                                          # installed or in-tree
LEVELS = _engine.supported_isa_levels()
SIZES = list(range(71)) + [4097, 9001]
SENTINEL = 0xA5
INITIAL_THRESHOLDS = _engine.thresholds()
INITIAL_THREADS = fastrelu.get_num_threads()


@pytest.fixture(params=LEVELS)
def isa(request):
    previous = _engine.use_isa(request.param)
    try:
        yield request.param
    finally:
        _engine.use_isa(previous)


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thr")
def threads(request):
    with fastrelu.num_threads(request.param):
        yield request.param


@pytest.fixture
def low_thresholds():
    previous = _engine.thresholds(nogil_min_bytes=0, parallel_min_bytes=1, stream_min_bytes=0)
    try:
        yield
    finally:
        _engine.thresholds(**previous)


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


def byteswapped(a):
    return a.byteswap().view(a.dtype.newbyteorder())


def unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = buf[1:].view(a.dtype)
    u[...] = a
    return u


def check_size(dt, n, rng):
    x0 = random_bits(rng, dt, n)
    g0 = random_bits(rng, dt, n)
    er, eg, eb = ref_relu(x0), ref_grad(x0), ref_backward(g0, x0)
    gd = Guarded(dt)
    off = n % 9

    # --- contiguous, out of place (fast path; relu streams) -----------------------
    x = gd.contiguous(n, (n * 7) % 5, x0)
    g = gd.contiguous(n, (n * 3) % 4, g0)
    assert_bits(fastrelu.relu(x), er, "relu")
    assert_bits(fastrelu.relu_grad(x), eg, "relu_grad")
    assert_bits(fastrelu.relu_backward(g, x), eb, "relu_backward")
    for fn, args, exp in ((fastrelu.relu, (x,), er), (fastrelu.relu_grad, (x,), eg),
                          (fastrelu.relu_backward, (g, x), eb),
                          (ufuncs.relu, (x,), er), (ufuncs.relu_grad, (x,), eg),
                          (ufuncs.relu_backward, (g, x), eb)):
        o = gd.contiguous(n, off, 0)
        r = fn(*args, out=o)
        assert r is o, fn.__name__
        assert_bits(o, exp, f"{fn.__name__} out=")
    assert_bits(ufuncs.relu(x), er, "ufunc_relu")
    assert_bits(ufuncs.relu_backward(g, x), eb, "ufunc_relu_backward")
    assert_bits(x, x0, "input x modified")
    assert_bits(g, g0, "input g modified")

    # --- contiguous, in place -----------------------------------------------------
    for how in ("relu_", "out=x", "ufunc out=x"):
        a = gd.contiguous(n, off, x0)
        if how == "relu_":
            assert fastrelu.relu_(a) is a
        elif how == "out=x":
            assert fastrelu.relu(a, out=a) is a
        else:
            ufuncs.relu(a, out=a)
        assert_bits(a, er, f"relu in place ({how})")
    a = gd.contiguous(n, off, x0)
    assert fastrelu.relu_grad(a, out=a) is a
    assert_bits(a, eg, "relu_grad out=x")
    a = gd.contiguous(n, off, g0)
    assert fastrelu.relu_backward(a, x, out=a) is a
    assert_bits(a, eb, "relu_backward out=grad_output")
    a = gd.contiguous(n, off, x0)
    assert fastrelu.relu_backward(g, a, out=a) is a
    assert_bits(a, eb, "relu_backward out=x")

    # --- strided and reversed (ufunc path, strided kernels) ------------------------
    xs = gd.strided(n, 2, x0)
    gs = gd.strided(n, -3, g0)
    assert_bits(fastrelu.relu(xs), er, "relu strided")
    assert_bits(fastrelu.relu_grad(xs), eg, "relu_grad strided")
    assert_bits(fastrelu.relu_backward(gs, xs), eb, "relu_backward strided")
    assert_bits(fastrelu.relu_backward(g, xs), eb, "relu_backward mixed")
    for fn, args, exp in ((fastrelu.relu, (xs,), er), (fastrelu.relu, (x,), er),
                          (fastrelu.relu_grad, (xs,), eg),
                          (fastrelu.relu_backward, (gs, xs), eb),
                          (fastrelu.relu_backward, (g, x), eb)):
        o = gd.strided(n, 3 if n % 2 else -2, 0)
        assert fn(*args, out=o) is o
        assert_bits(o, exp, f"{fn.__name__} strided out=")
    for step in (2, -1, -3):
        a = gd.strided(n, step, x0)
        assert fastrelu.relu_(a) is a
        assert_bits(a, er, f"relu_ step {step}")
    a = gd.strided(n, -2, g0)
    assert fastrelu.relu_backward(a, xs, out=a) is a
    assert_bits(a, eb, "relu_backward strided out=grad_output")
    assert_bits(xs, x0, "strided input modified")
    assert_bits(gs, g0, "strided input modified")

    # --- out partially overlapping an input (NumPy hands the loop an overlap it
    # considers safe for one forward pass: out before the input) ------------------
    for k in (1, 3, 64):
        if n <= k:
            continue
        for out_first in (True, False):
            src_, dst = (slice(k, None), slice(None, -k)) if out_first else \
                (slice(None, -k), slice(k, None))
            a = gd.contiguous(n, off, x0)
            assert fastrelu.relu(a[src_], out=a[dst]) is not None
            assert_bits(a[dst], ref_relu(x0[src_]), f"relu overlap k={k}")
            a = gd.contiguous(n, off, x0)
            fastrelu.relu_grad(a[src_], out=a[dst])
            assert_bits(a[dst], ref_grad(x0[src_]), f"relu_grad overlap k={k}")
            a = gd.contiguous(n, off, g0)
            fastrelu.relu_backward(a[src_], x0[dst], out=a[dst])
            assert_bits(a[dst], ref_backward(g0[src_], x0[dst]), f"backward overlap g k={k}")
            a = gd.contiguous(n, off, x0)
            fastrelu.relu_backward(g0[dst], a[src_], out=a[dst])
            assert_bits(a[dst], ref_backward(g0[dst], x0[src_]), f"backward overlap x k={k}")
            a = gd.contiguous(n, off, x0)
            ufuncs.relu(a[src_], out=a[dst])
            assert_bits(a[dst], ref_relu(x0[src_]), f"ufunc_relu overlap k={k}")
        if n > 2 * k:
            a = gd.contiguous(n, off, x0)                 # strided overlap
            fastrelu.relu(a[2 * k::2], out=a[:n - 2 * k:2])
            assert_bits(a[:n - 2 * k:2], ref_relu(x0[2 * k::2]), f"relu strided overlap k={k}")

    # --- byte-swapped and unaligned (NumPy buffers them: contiguous loops) ---------
    if np.dtype(dt).itemsize > 1:
        xb, gb = byteswapped(x0), byteswapped(g0)
        assert_bits(fastrelu.relu(xb), er, "relu byteswapped")
        assert_bits(fastrelu.relu_grad(xb), eg, "relu_grad byteswapped")
        assert_bits(fastrelu.relu_backward(gb, xb), eb, "relu_backward byteswapped")
        a = byteswapped(x0)
        assert fastrelu.relu_(a) is a
        assert_bits(native(a), er, "relu_ byteswapped")
        xu, gu = unaligned(x0), unaligned(g0)
        assert_bits(fastrelu.relu(xu), er, "relu unaligned")
        assert_bits(fastrelu.relu_backward(gu, xu), eb, "relu_backward unaligned")
        ou = unaligned(np.zeros(n, dt))
        assert fastrelu.relu(x, out=ou) is ou
        assert_bits(ou, er, "relu unaligned out=")
        assert fastrelu.relu_(xu) is xu
        assert_bits(xu, er, "relu_ unaligned")
    gd.check()


@pytest.mark.usefixtures("low_thresholds")
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_every_path_matches_oracle(isa, threads, dtype):
    assert _engine.ISA == isa and _engine.build_info()["isa"] == isa
    assert fastrelu.get_num_threads() == threads
    rng = np.random.default_rng([LEVELS.index(isa), threads, DTYPE_NAMES.index(dtype)])
    for n in SIZES:
        check_size(dtype, n, rng)


@pytest.mark.parametrize("dtype", ["float32", "int8", "float16", "uint64"])
def test_default_thresholds_match_oracle(isa, dtype):
    """The same with the shipped thresholds: a size above the parallel and
    no-GIL thresholds but below the streaming one."""
    rng = np.random.default_rng(7)
    n = (3 << 18) // np.dtype(dtype).itemsize + 13
    x, g = random_bits(rng, dtype, n), random_bits(rng, dtype, n)
    assert_bits(fastrelu.relu(x), ref_relu(x), "relu")
    assert_bits(fastrelu.relu_grad(x[::-1]), ref_grad(x[::-1]), "relu_grad")
    assert_bits(fastrelu.relu_backward(g, x), ref_backward(g, x), "relu_backward")
    a = x.copy()
    fastrelu.relu_(a)
    assert_bits(a, ref_relu(x), "relu_")


def test_use_isa_rejects_unknown_level():
    with pytest.raises(ValueError):
        _engine.use_isa("sse9")
    assert _engine.ISA == _engine._choose_isa()


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_forces_level(level):
    """FASTRELU_CPU picks the kernels at import (fresh interpreter)."""
    code = (
        "import numpy as np, fastrelu\n"
        "from fastrelu import _engine\n"
        "x = np.array([-1.5, -0.0, 2.0, np.nan, -np.inf], np.float32)\n"
        "print(_engine.ISA, _engine.build_info()['isa'], fastrelu.relu(x).tobytes().hex())\n")
    env = dict(os.environ, FASTRELU_CPU=level, PYTHONPATH=str(PACKAGE_DIR.parent))
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    expected = ref_relu(np.array([-1.5, -0.0, 2.0, np.nan, -np.inf], np.float32))
    assert out == [level, level, expected.tobytes().hex()]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_baseline_objects_have_no_avx():
    """scripts/check_baseline_isa.py: _core and the baseline kernels are free of
    VEX/EVEX (AVX) instructions; the AVX2 / AVX-512 kernels use ymm / zmm."""
    if not any(p.name.startswith("_kernels_avx2") for p in PACKAGE_DIR.glob("*.so")):
        pytest.skip("not an x86-64 build with per-ISA kernels")
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
