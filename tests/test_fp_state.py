"""fastrelu leaves the floating-point environment alone.

In a fresh interpreter (so import-time effects count: a library linked with
-ffast-math sets flush-to-zero / denormals-are-zero in MXCSR when it is
loaded), before ``import fastrelu``, after it, and after calls of every
operation of the registry (function, in-place twin, ufunc; with parameters
that overflow and underflow) on NaN, inf and subnormal data (small and large,
threaded arrays, every instruction-set level), the child checks:

* subnormals are representable and arithmetic producing or consuming them is
  not flushed (``tiny * 0.5 != 0``: no FTZ; ``min_sub + min_sub != 0``: no DAZ);
* the MXCSR control bits (read directly with ``stmxcsr`` from a few bytes of
  machine code run through ctypes -- no external program) and the x87 control
  word are unchanged; NumPy's error state is unchanged;
* no floating-point warning or error is raised (``np.errstate(all='raise')``).

The child also sets FTZ|DAZ itself and checks that the selections (the
"bits" family: relu, relu6, threshold and their backwards) still keep
subnormals bit for bit -- their kernels compare bits as integers, where
NumPy's own comparisons would see zeros -- and that the float arithmetic of
the "real" family (leaky_relu) gives what the reference gives in the same FP
modes (plain NumPy honours them too), also on the worker threads.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine

PACKAGE_DIR = Path(fastrelu.__file__).resolve().parent   # installed or in-tree

CHILD = r'''
import ctypes, json, mmap, sys, warnings
warnings.simplefilter("error")
import numpy as np

def machine_code_reader():
    """(get_mxcsr, set_mxcsr, get_x87_cw) via a few bytes of x86-64 code, or None."""
    if sys.platform != "linux" or not __import__("platform").machine() in ("x86_64", "AMD64"):
        return None
    try:
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except Exception:
        return None
    code = {0: b"\x0f\xae\x1f\xc3",     # stmxcsr (%rdi); ret
            16: b"\x0f\xae\x17\xc3",    # ldmxcsr (%rdi); ret
            32: b"\xd9\x3f\xc3"}        # fnstcw (%rdi); ret
    for off, c in code.items():
        buf[off:off + len(c)] = c
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    st, ld, cw = (proto(base + off) for off in (0, 16, 32))
    def get_mxcsr():
        v = ctypes.c_uint32(0); st(ctypes.addressof(v)); return v.value
    def set_mxcsr(value):
        v = ctypes.c_uint32(value); ld(ctypes.addressof(v))
    def get_cw():
        v = ctypes.c_uint16(0); cw(ctypes.addressof(v)); return v.value
    return get_mxcsr, set_mxcsr, get_cw, buf

regs = machine_code_reader()
FTZ, DAZ = 1 << 15, 1 << 6
CONTROL = 0xFFC0          # MXCSR without the six sticky status flags

def state():
    s = {}
    for t in (np.float32, np.float64):
        fi = np.finfo(t)
        tiny, sub = fi.smallest_normal, fi.smallest_subnormal
        a = np.array([tiny, sub], t)
        s[t.__name__] = {
            "smallest_subnormal_nonzero": bool(sub != 0),
            "scalar_tiny_half": bool(t(tiny) * t(0.5) != 0),           # FTZ
            "scalar_sub_plus_sub": bool(t(sub) + t(sub) != 0),         # DAZ
            "array_tiny_half": bool((a[:1] * t(0.5))[0] != 0),
            "array_sub_plus_sub": bool((a[1:] + a[1:])[0] != 0),
            "array_sub_times_one": bool((a[1:] * t(1))[0] == sub),
        }
    s["errstate"] = np.geterr()
    if regs:
        s["mxcsr_control"] = regs[0]() & CONTROL
        s["x87_cw"] = regs[2]()
    return s

report = {"before": state()}
import fastrelu
from fastrelu import _engine, _reference, ufuncs
from fastrelu._registry import OPS
level = sys.argv[1]
_engine.use_isa(level)
report["isa"] = _engine.ISA
report["after_import"] = state()

def data(t, n):
    fi = np.finfo(t)
    u = np.dtype(f"u{np.dtype(t).itemsize}")
    nan_payload = np.array(np.inf, t).view(u) | u.type(5)
    vals = np.array([np.nan, -np.nan, np.inf, -np.inf, fi.smallest_subnormal,
                     -fi.smallest_subnormal, fi.smallest_normal, -0.0, 0.0, fi.max,
                     fi.min, 1.0], t)
    vals = np.concatenate([vals, nan_payload.reshape(1).view(t)])
    return np.resize(vals, n)

#: per parameter kind: ordinary values, and ones that overflow (a slope also
#: one whose products underflow; bounds and values that underflow in their
#: cast: test_special_values.py::test_parameter_underflow_raises_no_fp_error)
PARAMS = {"slope": (0.01, 1e30, 1e-30), "bound": (0.5, -1e30, 1e30),
          "value": (-1.0, 1e30, -1e30)}

def params(op, i):
    return tuple(PARAMS[p.kind][i] for p in op.params)

def ufunc_params(op, ps, t):
    """The parameters as ufunc operands: a slope as float32 (float64 for float64
    data), a bound or value in the data's type."""
    slope = np.float64 if t is np.float64 else np.float32
    with np.errstate(all="ignore"):
        return [np.array(v).astype(slope if p.kind == "slope" else t)
                for p, v in zip(op.params, ps)]

with np.errstate(all="raise"):
    for t in (np.float16, np.float32, np.float64):
        for n in (13, 300_000):            # small (GIL held) and large (threads)
            x, g = data(t, n), data(t, n)[::-1].copy()
            for op in OPS:
                f = getattr(fastrelu, op.name)
                for i in range(3):
                    ps = params(op, i)
                    args = (g, x)[-op.arity:]
                    f(*args, *ps); f(*(a[::3] for a in args), *ps)
                    f(*(a.byteswap().view(a.dtype.newbyteorder()) for a in args), *ps)
                    getattr(ufuncs, op.name)(*args, *ufunc_params(op, ps, t))
                    if op.inplace:
                        getattr(fastrelu, op.inplace_name)(x.copy(), *ps)
report["after_calls"] = state()

# Another library turned on FTZ|DAZ: fastrelu must still keep subnormals exactly.
if regs:
    subs = {}
    for t in (np.float16, np.float32, np.float64):     # built before the flags are on
        nmant, u = np.finfo(t).nmant, np.dtype(f"u{np.dtype(t).itemsize}")
        sign = u.type(1 << (8 * u.itemsize - 1))
        subs[t] = np.array([1, (1 << nmant) - 1, sign | u.type(1)], u).view(t)
    bigs = {t: np.resize(sub, 300_000) for t, sub in subs.items()}
    negative_subs = {t: np.concatenate([sub, -sub[:2]]) for t, sub in subs.items()}
    saved = regs[0]()
    previous = _engine.thresholds(nogil_min_bytes=0, parallel_min_bytes=1, stream_min_bytes=0,
                                  cold_parallel_min_bytes=1)
    regs[1](saved | FTZ | DAZ)
    try:
        flushed = state()
        kept, same = {}, {}
        with fastrelu.num_threads(2):
            for t, sub in subs.items():
                u = f"u{sub.dtype.itemsize}"
                r = fastrelu.relu(sub)
                big = bigs[t]
                kept[t.__name__] = {
                    "relu": r.view(u).tolist() == [sub.view(u)[0], sub.view(u)[1], 0],
                    "relu_large": bool((fastrelu.relu(big).view(u) == np.where(
                        np.arange(big.size) % 3 == 2, 0, big.view(u))).all()),
                    "relu6": fastrelu.relu6(sub).view(u).tolist()
                             == [sub.view(u)[0], sub.view(u)[1], 0],
                    "threshold": fastrelu.threshold(sub, 0.0, 5.0).view(u).tolist()
                                 == [sub.view(u)[0], sub.view(u)[1],
                                     int(np.array(5.0, t).view(u))],
                    "relu_grad": fastrelu.relu_grad(sub).tolist() == [1, 1, 0],
                    "relu_backward": fastrelu.relu_backward(sub, sub).view(u).tolist()
                                     == [sub.view(u)[0], sub.view(u)[1], 0],
                }
                for op in [op for op in OPS if op.family == "real"]:
                    for a in (negative_subs[t], big):
                        args = (a[::-1].copy(), a)[-op.arity:]
                        ps = params(op, 0)
                        r = getattr(fastrelu, op.name)(*args, *ps)
                        ref = getattr(_reference, op.name)(*args, *ps)
                        same[f"{t.__name__} {op.name} {a.size}"] = bool(
                            (r.view(u) == ref.view(u)).all())
        report["with_ftz_daz"] = {"state": flushed, "kept": kept, "same": same,
                                  "mxcsr_after_calls": regs[0]() & CONTROL}
    finally:
        regs[1](saved)
        _engine.thresholds(**previous)
print(json.dumps(report))
'''


def run_child(level):
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR.parent))
    env.pop("FASTRELU_CPU", None)
    res = subprocess.run([sys.executable, "-c", CHILD, level], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module", params=_engine.supported_isa_levels())
def report(request):
    return run_child(request.param)


def test_subnormals_survive_import_and_calls(report):
    before = report["before"]
    for t in ("float32", "float64"):
        assert all(before[t].values()), f"the interpreter flushes subnormals already: {before}"
    assert report["after_import"] == before, "import fastrelu changed the FP environment"
    assert report["after_calls"] == before, "calls on NaN/inf/subnormal data changed the FP state"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 MXCSR")
def test_mxcsr_read_directly(report):
    before = report["before"]
    if "mxcsr_control" not in before:
        pytest.skip("cannot map executable memory to read MXCSR")
    assert before["mxcsr_control"] & ((1 << 15) | (1 << 6)) == 0, "FTZ/DAZ set before import"
    assert report["after_import"]["mxcsr_control"] == before["mxcsr_control"]
    assert report["after_calls"]["mxcsr_control"] == before["mxcsr_control"]
    assert report["after_calls"]["x87_cw"] == before["x87_cw"]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 MXCSR")
def test_subnormals_kept_under_ftz_daz(report):
    if "with_ftz_daz" not in report:
        pytest.skip("cannot map executable memory to set MXCSR")
    w = report["with_ftz_daz"]
    # the flags really were on (NumPy arithmetic flushes) ...
    assert not w["state"]["float64"]["array_tiny_half"]
    assert not w["state"]["float64"]["array_sub_plus_sub"]
    assert w["mxcsr_after_calls"] & ((1 << 15) | (1 << 6)) == (1 << 15) | (1 << 6)
    # ... and fastrelu's selections kept the subnormals bit for bit anyway
    for t, checks in w["kept"].items():
        assert all(checks.values()), f"{t}: {checks}"
    # ... and the float arithmetic gave the reference's bits in those modes
    assert w["same"] and all(w["same"].values()), \
        [k for k, ok in w["same"].items() if not ok]


# --- the IEEE exception flags, read directly ---------------------------------------------

def _libm():
    """fetestexcept / feclearexcept / feraiseexcept from the C library, or None."""
    import ctypes
    import ctypes.util
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        return libm.fetestexcept, libm.feclearexcept, libm.feraiseexcept
    except (OSError, AttributeError):
        return None


# <fenv.h> on x86-64 and aarch64 Linux
FE_FLAGS = ({"FE_INVALID": 0x01, "FE_DIVBYZERO": 0x04, "FE_OVERFLOW": 0x08,
             "FE_UNDERFLOW": 0x10, "FE_INEXACT": 0x20}
            if platform.machine() in ("x86_64", "AMD64") else None)


@pytest.mark.skipif(_libm() is None or FE_FLAGS is None, reason="x86-64 Linux <fenv.h>")
@pytest.mark.parametrize("path", ["fast", "strided", "ufunc", "threaded"])
def test_ieee_flags_are_the_callers_on_every_path(path):
    """No call raises an IEEE exception flag, on any path, for any operation
    (leaky_relu's discarded products overflow and underflow here), and the fast
    path leaves flags the caller had raised as they were (NumPy's ufunc
    machinery, the other paths, clears them before its loops by design)."""
    from fastrelu._registry import OPS
    from fastrelu import ufuncs
    test, clear, raise_ = _libm()
    all_flags = sum(FE_FLAGS.values())
    x = np.array([3e38, -3e38, 1e-38, -1e-38, np.nan, -np.inf, 1.0] * 80_000, np.float32)
    if path == "strided":
        x = np.repeat(x, 2)[::2]
    previous = (_engine.thresholds(parallel_min_bytes=1 << 12, cold_parallel_min_bytes=1 << 12)
                if path == "threaded" else None)
    try:
        for op in OPS:
            if "float32" not in op.dtype_names:
                continue
            params = [{"slope": 1e10, "bound": 0.5, "value": -1.0}[p.kind] for p in op.params]
            args = (x,) if op.arity == 1 else (x[::-1].copy() if path != "strided" else x, x)
            for before in (0, FE_FLAGS["FE_INEXACT"] | FE_FLAGS["FE_DIVBYZERO"]):
                clear(all_flags)
                if before:
                    raise_(before)
                if path == "ufunc":
                    getattr(ufuncs, op.name)(*args, *[np.float32(p) for p in params])
                else:
                    getattr(fastrelu, op.name)(*args, *params)
                after = test(all_flags)
                assert after & ~before == 0, (op.name, path, before, after)
                if path == "fast":
                    assert after == before, (op.name, before, after)
    finally:
        clear(all_flags)
        if previous is not None:
            _engine.thresholds(**previous)


# --- the rounding mode ------------------------------------------------------------------

FE_ROUND = ({"upward": 0x800, "downward": 0x400, "towardzero": 0xc00, "nearest": 0}
            if platform.machine() in ("x86_64", "AMD64") else None)


def _half_rounded(p, mode):
    """float32 values ``p`` rounded to float16 in ``mode``, written out: the
    float16 neighbours of each value (NumPy's round-to-nearest conversion and
    the next float16 on the other side), then the one ``mode`` picks."""
    with np.errstate(over="ignore"):
        h = p.astype(np.float16)
    wide, hw = p.astype(np.float64), h.astype(np.float64)
    lo = np.where(hw > wide, np.nextafter(h, np.float16(-np.inf)), h)
    hi = np.where(hw < wide, np.nextafter(h, np.float16(np.inf)), h)
    if mode == "upward":
        return hi
    if mode == "downward":
        return lo
    return np.where(wide < 0, hi, lo)      # toward zero


@pytest.mark.skipif(_libm() is None or FE_ROUND is None, reason="x86-64 Linux <fenv.h>")
@pytest.mark.parametrize("level", _engine.supported_isa_levels())
@pytest.mark.parametrize("mode", ["upward", "downward", "towardzero"])
@pytest.mark.parametrize("slope", [0.375, 3.0])
def test_float16_rounds_in_the_callers_mode(level, mode, slope):
    """float16 leaky_relu is computed in float32 and rounded once to float16 in
    the caller's rounding mode, on every level: F16C's conversion with the
    current direction, and the portable integer conversion of the baseline
    (subnormal results, and overflow to inf or to the largest finite value)."""
    import ctypes
    import ctypes.util
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    bits = np.arange(0x8001, 0xfc00, dtype=np.uint16)       # every finite negative float16
    x = bits.view(np.float16)
    previous_level = _engine.use_isa(level)
    assert libm.fesetround(FE_ROUND[mode]) == 0
    try:
        got = fastrelu.leaky_relu(x, slope)
        product = x.astype(np.float32) * np.float32(slope)     # exact: 11 + 2 bits
    finally:
        libm.fesetround(FE_ROUND["nearest"])
        _engine.use_isa(previous_level)
    want = _half_rounded(product, mode)
    differ = np.flatnonzero(got.view(np.uint16) != want.view(np.uint16))
    assert differ.size == 0, [(float(x[i]), float(got[i]), float(want[i])) for i in differ[:5]]
