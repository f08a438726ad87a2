"""The ml_dtypes floats (bfloat16, float8_e4m3fn, float8_e5m2) in every
operation of the registry that takes them (``op.ml``), against the reference.

Every bit pattern of the dtype is an input (so NaN payloads, both zeros,
subnormals, the largest values and float8_e4m3fn's missing infinity are all
covered), through the function, the in-place twin, the ufunc and ``out=``, in
strided and 2-D layouts, on every instruction-set level and on two threads.
The formats that break the sign-bit rule (``*fnuz``) and the operations
without ml_dtypes support are refused with a TypeError, the inputs untouched.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ml_dtypes = pytest.importorskip("ml_dtypes")

import fastrelu  # noqa: E402
from fastrelu import _engine  # noqa: E402
from fastrelu._registry import ML_DTYPE_NAMES, OPS  # noqa: E402
from helpers import (assert_same, bits, call, call_inplace, call_ufunc, expected,  # noqa: E402
                     from_bits, op_id, snapshot, threaded_size, uint_dtype)

pytestmark = pytest.mark.core

ML_OPS = tuple(op for op in OPS if op.ml)
LEVELS = _engine.supported_isa_levels()

#: Parameters per kind: slopes that round, overflow and flip the sign; bounds and
#: values at the format's edges (448 is float8_e4m3fn's largest, 1e6 overflows
#: every float8 and 2**-9 is a float8_e4m3fn subnormal).
PARAMS = {"slope": (0.01, 0.3, 3.7, -0.5, 1e9),
          "bound": (0.0, 0.5, -2.0, 448.0, float("nan"), 2.0 ** -9),
          "value": (-3.0, 6.0, -0.0, 1e6, float("nan"), 0.1)}


def param_sets(op):
    if not op.params:
        return [()]
    lists = [PARAMS[p.kind] for p in op.params]
    return [tuple(v[i % len(v)] for v in lists) for i in range(max(map(len, lists)))]


def ml_cases(ops=ML_OPS):
    return [pytest.param(op, name, id=f"{op.name}-{name}")
            for op in ops for name in ML_DTYPE_NAMES]


def every_pattern(dtype):
    """Every bit pattern of ``dtype``, in order."""
    return from_bits(np.arange(1 << (8 * dtype.itemsize)), dtype)


def operands(op, dtype, rng, n=None):
    """x: every bit pattern (tiled to ``n``); grad_output: random bits."""
    x = every_pattern(dtype)
    if n is not None:
        x = np.resize(x, n)
    g = from_bits(rng.integers(0, 1 << (8 * dtype.itemsize), x.size), dtype)
    return (x,) if op.arity == 1 else (g, x)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_the_dtypes_are_found():
    assert [dt.name for dt in _engine.ML_DTYPES] == list(ML_DTYPE_NAMES)


@pytest.mark.parametrize("op, name", ml_cases())
def test_every_bit_pattern(op, name, rng):
    dtype = np.dtype(getattr(ml_dtypes, name))
    arrays = operands(op, dtype, rng)
    before = [snapshot(a) for a in arrays]
    for params in param_sets(op):
        want = expected(op, arrays, params)
        assert want.dtype == dtype
        assert_same(call(op, arrays, params), want, f"{op.name}{params}")
        assert_same(call_ufunc(op, arrays, params), want, f"ufunc {op.name}{params}")
        out = np.empty_like(arrays[-1])
        assert call(op, arrays, params, out=out) is out
        assert_same(out, want, f"{op.name}{params} out=")
        if op.inplace:
            y = arrays[0].copy()
            assert call_inplace(op, y, params) is y
            assert_same(y, want, f"{op.inplace_name}{params}")
    for a, b in zip(arrays, before):
        assert_same(a, b, "input unchanged")


@pytest.mark.parametrize("op, name", ml_cases())
def test_layouts(op, name, rng):
    """Strided, reversed, 2-D (C and F order) and 0-d operands."""
    dtype = np.dtype(getattr(ml_dtypes, name))
    (params,) = param_sets(op)[:1]
    base = operands(op, dtype, rng, n=6 * 1024)
    views = {
        "step3": lambda a: a[::3],
        "reversed": lambda a: a[::-1],
        "2-D C": lambda a: a.reshape(96, 64),
        "2-D F": lambda a: np.asfortranarray(a.reshape(96, 64)),
        "transposed": lambda a: a.reshape(64, 96).T,
        "0-d": lambda a: a[5].reshape(()),
    }
    for name_, view in views.items():
        arrays = tuple(view(a) for a in base)
        want = expected(op, arrays, params)
        assert_same(call(op, arrays, params), want, name_)
        # (a ufunc returns a NumPy scalar for 0-d operands, as NumPy's do)
        assert_same(np.asarray(call_ufunc(op, arrays, params)), want, f"ufunc {name_}")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("op, name", ml_cases())
def test_levels_and_threads(op, name, level, rng, threaded):
    """Every level; outputs the two threads split, streamed."""
    dtype = np.dtype(getattr(ml_dtypes, name))
    previous = _engine.use_isa(level)
    try:
        arrays = operands(op, dtype, rng, n=threaded_size(dtype, chunks=3))
        for params in param_sets(op)[:2]:
            assert_same(call(op, arrays, params), expected(op, arrays, params),
                        f"{level} {op.name}{params}")
    finally:
        _engine.use_isa(previous)


@pytest.mark.parametrize("name", ML_DTYPE_NAMES)
def test_relu_is_a_selection(name):
    """relu keeps NaNs bit for bit (every payload, both signs) and positive
    values, and gives +0 (never -0) elsewhere, written out on the bits."""
    dtype = np.dtype(getattr(ml_dtypes, name))
    x = every_pattern(dtype)
    b = bits(x).astype(np.int64)
    sign = 1 << (8 * dtype.itemsize - 1)
    wide = np.where(np.isnan(x), np.float32(np.nan), x.astype(np.float32))
    keep = np.isnan(x) | (wide > 0)
    want = np.where(keep, b, 0)
    assert np.array_equal(bits(fastrelu.relu(x)).astype(np.int64), want)
    assert not np.any(bits(fastrelu.relu(x)) == sign)        # no -0.0


FNUZ = [n for n in ("float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e4m3b11fnuz")
        if hasattr(ml_dtypes, n)]


@pytest.mark.parametrize("name", FNUZ)
@pytest.mark.parametrize("op", ML_OPS, ids=op_id)
def test_fnuz_formats_are_refused(op, name):
    dtype = np.dtype(getattr(ml_dtypes, name))
    x = from_bits(np.arange(256), dtype)
    arrays = (x,) * op.arity
    before = snapshot(x)
    (params,) = param_sets(op)[:1]
    with pytest.raises(TypeError, match="0x80"):
        call(op, arrays, params)
    if op.inplace:
        with pytest.raises(TypeError, match="0x80"):
            call_inplace(op, x, params)
    assert_same(x, before)


@pytest.mark.parametrize("op", [op for op in OPS if not op.ml], ids=op_id)
@pytest.mark.parametrize("name", ML_DTYPE_NAMES)
def test_operations_without_ml_dtypes_refuse_them(op, name):
    x = np.ones(8, getattr(ml_dtypes, name))
    with pytest.raises(TypeError, match="supported dtypes"):
        call(op, (x,) * op.arity)


@pytest.mark.parametrize("name", ML_DTYPE_NAMES)
def test_fused_operations_refuse_them(name):
    x = np.ones((4, 8), getattr(ml_dtypes, name))
    for fn in (lambda: fastrelu.relu_with_mask(x), lambda: fastrelu.relu_with_counts(x),
               lambda: fastrelu.bias_relu(x, x[0]), lambda: fastrelu.add_relu(x, x)):
        with pytest.raises(TypeError, match="supported dtypes"):
            fn()


@pytest.mark.parametrize("name", ML_DTYPE_NAMES)
def test_mixed_dtypes_are_a_type_error(name):
    x = np.ones(8, getattr(ml_dtypes, name))
    with pytest.raises(TypeError, match="must be the same"):
        fastrelu.relu_backward(x.astype(np.float32), x)
    with pytest.raises(TypeError):
        fastrelu.relu(x, out=np.empty(8, np.float32))


@pytest.mark.parametrize("order", ["fastrelu first", "ml_dtypes first"])
def test_fresh_process_either_import_order(order):
    """A process that imports only fastrelu and ml_dtypes, in either order, gets
    the dtypes in the functions and the ufuncs."""
    imports = ("import fastrelu, ml_dtypes" if order == "fastrelu first"
               else "import ml_dtypes, fastrelu")
    code = (f"{imports}\nimport numpy as np\n"
            "x = np.array([-1.5, 2.0, float('nan')], ml_dtypes.bfloat16)\n"
            "y = fastrelu.relu(x); z = fastrelu.ufuncs.relu6(x * 4)\n"
            "print(y.dtype, y.tolist(), z.tolist())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split(" ", 1)
    assert out[0] == "bfloat16"
    assert out[1].strip() == "[0.0, 2.0, nan] [0.0, 6.0, nan]"


def test_without_ml_dtypes_installed():
    """ml_dtypes is optional: without it fastrelu imports, has no ML dtypes and
    runs the others."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'ml_dtypes': raise ImportError('blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import numpy as np, fastrelu\n"
            "from fastrelu import _engine\n"
            "assert _engine.ML_DTYPES == (), _engine.ML_DTYPES\n"
            "print(fastrelu.relu(np.array([-1.0, 2.0], np.float32)).tolist())")
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout
    assert out.strip() == "[0.0, 2.0]"


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_leaky_relu_rounds_once_like_ml_dtypes(name, rng):
    """leaky_relu on finite values equals ml_dtypes' own cast of the float32
    product (round to nearest even), for many slopes."""
    dtype = np.dtype(getattr(ml_dtypes, name))
    x = every_pattern(dtype)
    x = x[np.isfinite(x.astype(np.float32))]
    for slope in rng.uniform(-4, 4, 50).astype(np.float32):
        with np.errstate(all="ignore"):
            product = (x.astype(np.float32) * slope).astype(dtype)
        want = np.where(x.astype(np.float32) > 0, x, product)
        got = fastrelu.leaky_relu(x, float(slope))
        nan = np.isnan(want.astype(np.float32))      # float8_e4m3fn's overflow
        assert np.array_equal(bits(got)[~nan], bits(want)[~nan]), float(slope)
        assert np.array_equal(np.isnan(got.astype(np.float32)), nan), float(slope)


def test_uint_dtype_of_ml_dtypes():
    assert uint_dtype(np.dtype(ml_dtypes.bfloat16)) == np.uint16
