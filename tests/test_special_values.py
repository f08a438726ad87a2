"""Special values through every operation: NaN payloads (both signs, quiet and
signalling), signed zeros, infinities, subnormals, the clip at 6 and integer
extremes, alone and in every combination of a backward's two operands, with
every generated parameter; every float16 bit pattern; no floating-point
warnings. The relu bits are also pinned by hand, which pins the reference."""
import warnings

import numpy as np
import pytest

import fastrelu
from helpers import (BINARY_OPS, FLOAT_DTYPE_NAMES, OPS, assert_same,
                     bits, call, call_inplace, call_ufunc, expected, float_special_bits, from_bits,
                     int_specials, make_layout, op_dtype_params, op_id, param_sets,
                     relayout, special_values, uint_dtype)

pytestmark = pytest.mark.core

# --- relu, pinned by hand ---------------------------------------------------------------------

# (input bits, relu bits, grad) per dtype
PINNED = {
    "float32": [
        (0x7FC00123, 0x7FC00123, 0),   # quiet NaN with payload: kept
        (0xFFC00123, 0xFFC00123, 0),   # negative-signed NaN with payload: kept
        (0x7F800001, 0x7F800001, 0),   # signalling NaN: kept, not quieted
        (0xFF800001, 0xFF800001, 0),
        (0xFFFFFFFF, 0xFFFFFFFF, 0),
        (0x80000000, 0x00000000, 0),   # -0.0 -> +0.0
        (0x00000000, 0x00000000, 0),   # +0.0
        (0xFF800000, 0x00000000, 0),   # -inf -> +0.0
        (0x7F800000, 0x7F800000, 1),   # +inf kept
        (0x00000001, 0x00000001, 1),   # smallest subnormal kept
        (0x80000001, 0x00000000, 0),   # its negative -> +0.0
        (0x007FFFFF, 0x007FFFFF, 1),   # largest subnormal
        (0x7F7FFFFF, 0x7F7FFFFF, 1),   # finfo.max
        (0xFF7FFFFF, 0x00000000, 0),   # finfo.min
        (0x3F800000, 0x3F800000, 1),   # 1.0
        (0xBF800000, 0x00000000, 0),   # -1.0
    ],
    "float16": [
        (0x7E01, 0x7E01, 0), (0xFE01, 0xFE01, 0), (0x7C01, 0x7C01, 0), (0xFC01, 0xFC01, 0),
        (0x8000, 0x0000, 0), (0xFC00, 0x0000, 0), (0x7C00, 0x7C00, 1),
        (0x0001, 0x0001, 1), (0x8001, 0x0000, 0), (0x03FF, 0x03FF, 1),
        (0x7BFF, 0x7BFF, 1), (0xFBFF, 0x0000, 0), (0x3C00, 0x3C00, 1), (0xBC00, 0x0000, 0),
    ],
    "float64": [
        (0x7FF8000000000123, 0x7FF8000000000123, 0),
        (0xFFF8000000000123, 0xFFF8000000000123, 0),
        (0x7FF0000000000001, 0x7FF0000000000001, 0),
        (0xFFF0000000000001, 0xFFF0000000000001, 0),
        (0x8000000000000000, 0x0000000000000000, 0),
        (0xFFF0000000000000, 0x0000000000000000, 0),
        (0x7FF0000000000000, 0x7FF0000000000000, 1),
        (0x0000000000000001, 0x0000000000000001, 1),
        (0x8000000000000001, 0x0000000000000000, 0),
        (0x000FFFFFFFFFFFFF, 0x000FFFFFFFFFFFFF, 1),
        (0x7FEFFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 1),
        (0xFFEFFFFFFFFFFFFF, 0x0000000000000000, 0),
    ],
}
PINNED_PARAMS = [(dt, i) for dt in FLOAT_DTYPE_NAMES for i in range(len(PINNED[dt]))]


def _bits_id(p):
    dt, i = p
    return f"{dt}-0x{PINNED[dt][i][0]:x}"


@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "unaligned"])
@pytest.mark.parametrize("case", PINNED_PARAMS, ids=map(_bits_id, PINNED_PARAMS))
def test_pinned_relu_bits(case, layout):
    """relu / relu_ / relu_grad / relu_backward on one pinned bit pattern, alone
    and inside arrays long enough for the vector loops, in several layouts."""
    dtype, i = case
    x_bits, relu_bits, grad = PINNED[dtype][i]
    grad_bits = bits(np.array(grad, dtype=dtype))
    g_bits = float_special_bits(dtype)["-qnan-payload"]     # a NaN gradient
    for n in (1, 3, 64, 1000):
        x = make_layout(layout, from_bits([x_bits] * n, dtype))
        assert (bits(fastrelu.relu(x)) == relu_bits).all()
        assert (bits(fastrelu.relu_grad(x)) == grad_bits).all()
        g = from_bits([g_bits] * n, dtype)
        assert (bits(fastrelu.relu_backward(g, x)) == (g_bits if grad else 0)).all()
        y = relayout("C", x)
        fastrelu.relu_(y)
        assert (bits(y) == relu_bits).all()


@pytest.mark.parametrize("dtype", FLOAT_DTYPE_NAMES)
def test_pinned_table_matches_reference(dtype):
    """The hand-written table and the reference agree."""
    x = from_bits([c[0] for c in PINNED[dtype]], dtype)
    assert (bits(expected(OPS[0], (x,))) == [c[1] for c in PINNED[dtype]]).all()
    assert (bits(fastrelu._reference.relu_grad(x))
            == bits(np.array([c[2] for c in PINNED[dtype]], dtype))).all()


# --- every op ----------------------------------------------------------------------------

def special_operands(op, dtype, rng, repeat=9):
    """The special values of ``dtype`` for ``op``: for one input, all of them
    ``repeat`` times in random order; for two, every (grad_output, x) pair of
    them, shuffled (long enough for the vector loops)."""
    s = special_values(dtype)
    if op.arity == 1:
        return (np.tile(s, repeat)[rng.permutation(repeat * s.size)],)
    g, x = (a.ravel() for a in np.meshgrid(s, s))
    order = rng.permutation(g.size)
    return g[order].copy(), x[order].copy()


@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_special_values_against_reference(op, dtype):
    """The special values of each dtype (every pair of them for a backward),
    with every generated parameter, contiguous and strided, out of place and
    in place: the reference's bits."""
    rng = np.random.default_rng(3)
    for params in param_sets(op, dtype):
        arrays = special_operands(op, dtype, rng)
        want = expected(op, arrays, params)
        assert_same(call(op, arrays, params), want)
        assert_same(call(op, tuple(a[::-1] for a in arrays), params),
                    expected(op, tuple(a[::-1] for a in arrays), params))
        if op.inplace:
            y = arrays[0].copy()
            call_inplace(op, y, params)
            assert_same(y, want)


@pytest.mark.parametrize("op, dtype", op_dtype_params(dtypes=FLOAT_DTYPE_NAMES), ids=op_id)
@pytest.mark.parametrize("name", ["qnan", "-qnan", "qnan-payload", "-qnan-payload", "snan",
                                  "-snan", "nan-all-ones", "-nan-all-ones"])
def test_every_nan(op, dtype, name):
    """Every kind of NaN (sign, quiet/signalling, payload) as x and, for a
    backward, as grad_output, filling an array long enough for the vector
    loops: the reference's bits (kept as they are by the selections)."""
    pattern = float_special_bits(dtype)[name]
    nans = from_bits([pattern] * 70, dtype)
    others = np.resize(special_values(dtype), 70)
    for params in param_sets(op, dtype):
        cases = [(nans,)] if op.arity == 1 else [(others, nans), (nans, others)]
        for arrays in cases:
            assert_same(call(op, arrays, params), expected(op, arrays, params))


SIGNALLING_NANS = {"float16": [0x7C01, 0xFC01, 0x7D55, 0x7DFF],
                   "float32": [0x7F800001, 0xFF800001, 0x7FA00000],
                   "float64": [0x7FF0000000000001, 0xFFF4000000000000]}


@pytest.mark.parametrize("dtype", FLOAT_DTYPE_NAMES)
def test_leaky_relu_backward_passes_signalling_nans(dtype):
    """Where x > 0, leaky_relu_backward returns grad_output's bits, signalling
    NaNs included (float16 is computed in float32: the conversions must not
    quiet them); where x <= 0 the product's NaN, as the reference says."""
    g = from_bits(SIGNALLING_NANS[dtype] * 20, dtype)
    x = np.full(g.size, 4.5, dtype)
    assert_same(fastrelu.leaky_relu_backward(g, x, 0.5), g)
    assert_same(fastrelu.leaky_relu_backward(g, -x, 0.5),
                fastrelu._reference.leaky_relu_backward(g, -x, 0.5))


@pytest.mark.parametrize("op", [op for op in OPS if "float16" in op.dtype_names], ids=op_id)
def test_every_float16_bit_pattern(op):
    """All 65536 float16 bit patterns (as x; reversed as grad_output) with every
    generated parameter; a sample of float32 and float64 ones."""
    rng = np.random.default_rng(7)
    for dtype in FLOAT_DTYPE_NAMES:
        ut = uint_dtype(dtype)
        if dtype == "float16":
            raw = np.arange(1 << 16, dtype=ut)
        else:
            raw = rng.integers(0, np.iinfo(ut).max, size=1 << 16, dtype=ut, endpoint=True)
        x = raw.view(dtype)
        arrays = (raw[::-1].copy().view(dtype), x)[-op.arity:]
        for params in param_sets(op, dtype):
            assert_same(call(op, arrays, params), expected(op, arrays, params))


@pytest.mark.parametrize("op", [op for op in OPS if "int8" in op.dtype_names], ids=op_id)
def test_every_8_bit_pattern(op):
    """All int8 and uint8 values (for a backward: every pair of them)."""
    for dtype in ("int8", "uint8"):
        every = np.arange(256, dtype=np.uint8).view(dtype)
        if op.arity == 1:
            arrays = (every,)
        else:
            arrays = tuple(a.ravel().copy() for a in np.meshgrid(every, every))
        for params in param_sets(op, dtype):
            assert_same(call(op, arrays, params), expected(op, arrays, params))


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPE_NAMES)
def test_masked_gradients_are_positive_zero(op, dtype):
    """A backward's masked elements are exactly +0 (no -0.0) even where the
    gradient is inf or NaN -- except leaky_relu's, which scales them: for
    every op, the reference's bits."""
    specials = np.array([np.inf, -np.inf, np.nan, -np.nan, -0.0], dtype=dtype)
    xs = np.array([0.0, -0.0, -1.0, -np.inf, np.nan, -np.nan, 1.0, np.inf, 5.5, 6.0, 7.0],
                  dtype=dtype)
    g, x = (a.ravel().copy() for a in np.meshgrid(np.resize(specials, 22), xs))
    for params in param_sets(op, dtype):
        result = call(op, (g, x), params)
        assert_same(result, expected(op, (g, x), params))
    if op.name != "leaky_relu_backward":
        masked = bits(result) == 0
        assert not np.signbit(result[masked]).any()


@pytest.mark.parametrize("op, dtype",
                         op_dtype_params(dtypes=("int8", "int64", "uint8", "uint64")), ids=op_id)
def test_integer_extremes(op, dtype):
    """iinfo.min, max and the values around them and around 0 and 6, for every
    op and generated parameter, against the reference."""
    values = np.array(list(int_specials(dtype).values()), dtype=dtype)
    x = np.tile(values, 11)
    g = np.full_like(x, np.iinfo(dtype).min if dtype.startswith("int") else np.iinfo(dtype).max)
    arrays = (g, x)[-op.arity:]
    for params in param_sets(op, dtype):
        assert_same(call(op, arrays, params), expected(op, arrays, params))


def test_integer_special_table_is_complete():
    """Sanity check of the value generator: it includes the integer extremes."""
    for dt in ("int8", "uint64"):
        vals = int_specials(dt)
        assert np.iinfo(dt).max in vals.values() and np.iinfo(dt).min in vals.values()


#: Slopes that overflow or underflow every float product, and a NaN-producing
#: one (inf * 0); bounds and values at the extremes.
EXTREME_PARAMS = {"slope": (1e30, -1e30, 1e-30, 0.0),
                  "bound": (np.inf, -np.inf, np.nan, 1e30),
                  "value": (np.nan, np.inf, -1e30, -0.0)}


@pytest.mark.parametrize("op", [op for op in OPS if "float16" in op.dtype_names], ids=op_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPE_NAMES)
@pytest.mark.parametrize("n", [5, 4097, 300_000])
def test_no_floating_point_warnings(op, dtype, n):
    """NaN, inf and subnormal inputs with extreme parameters raise no
    RuntimeWarning (invalid / overflow / underflow) on any path -- contiguous,
    strided, byte-swapped, in place -- even with every NumPy FP error set to
    raise; and the results are the reference's."""
    x = np.resize(special_values(dtype), n)
    g = x[::-1].copy()
    arrays = (g, x)[-op.arity:]
    swapped = tuple(relayout("byteswapped", a) for a in arrays)
    for i in range(len(EXTREME_PARAMS["slope"])):
        params = tuple(EXTREME_PARAMS[p.kind][i] for p in op.params)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                results = [(call(op, arrays, params), arrays),
                           (call(op, tuple(a[::2] for a in arrays), params),
                            tuple(a[::2] for a in arrays)),
                           (call(op, swapped, params), arrays),
                           (call_ufunc(op, arrays, params), arrays)]
                if op.inplace:
                    results.append((call_inplace(op, x.copy(), params), arrays))
        for result, operands in results:
            assert_same(result, expected(op, operands, params))


@pytest.mark.parametrize("op", [op for op in OPS if any(p.kind != "slope" for p in op.params)],
                         ids=op_id)
@pytest.mark.parametrize("dtype, tiny", [("float16", 1e-40), ("float32", 1e-50)])
def test_parameter_underflow_raises_no_fp_error(op, dtype, tiny):
    """Bounds and values that underflow when cast (to 0 or a subnormal) raise no
    FP error and warn nothing, on the fast and the general path."""
    x = np.resize(special_values(dtype), 70)
    for operand in (x, x.reshape(7, 10)[::2]):         # the fast and the general path
        arrays = (operand[::-1].copy(), operand)[-op.arity:]
        params = (tiny,) * len(op.params)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                result = call(op, arrays, params)
        assert_same(result, expected(op, arrays, params))
