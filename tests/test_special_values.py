"""Pinned special values: NaN payloads (both signs, quiet and signalling) kept bit
for bit, -0.0 -> +0.0, -inf -> 0, +inf and subnormals kept, integer extremes;
and no floating-point warnings for any of them."""
import warnings

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
import oracle
from conftest import float_special_bits, int_specials, special_values
from oracle import DTYPE_NAMES, assert_same, bits, from_bits

FLOATS = ["float16", "float32", "float64"]

# (input bits, relu bits, grad) per dtype, pinned by hand
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


PINNED_PARAMS = [(dt, i) for dt in FLOATS for i in range(len(PINNED[dt]))]


def _bits_id(p):
    dt, i = p
    return f"{dt}-0x{PINNED[dt][i][0]:x}"


@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "unaligned"])
@pytest.mark.parametrize("case", PINNED_PARAMS, ids=map(_bits_id, PINNED_PARAMS))
def test_pinned_float_bits(case, layout):
    """relu / relu_ / relu_grad / relu_backward on one pinned bit pattern, alone and
    inside arrays long enough for the vector loops, in several layouts."""
    dtype, i = case
    x_bits, relu_bits, grad = PINNED[dtype][i]
    grad_bits = bits(np.array(grad, dtype=dtype))
    g_bits = float_special_bits(dtype)["-qnan-payload"]     # a NaN gradient
    for n in (1, 3, 64, 1000):
        x = oracle.make_layout(layout, from_bits([x_bits] * n, dtype))
        assert (bits(fastrelu.relu(x)) == relu_bits).all()
        assert (bits(fastrelu.relu_grad(x)) == grad_bits).all()
        g = from_bits([g_bits] * n, dtype)
        assert (bits(fastrelu.relu_backward(g, x)) == (g_bits if grad else 0)).all()
        y = oracle.relayout("C", x)
        fastrelu.relu_(y)
        assert (bits(y) == relu_bits).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_pinned_table_matches_oracle(dtype):
    """The hand-written table and the oracle agree (the oracle copies bits too)."""
    x = from_bits([c[0] for c in PINNED[dtype]], dtype)
    assert (bits(oracle.relu(x)) == [c[1] for c in PINNED[dtype]]).all()
    assert (oracle.relu_grad(x) == [c[2] for c in PINNED[dtype]]).all()


def test_float32_nan_payloads_kept():
    """float32 bits 0x7fc00123 and 0xffc00123 both come out unchanged."""
    x = np.array([0x7FC00123, 0xFFC00123], dtype=np.uint32).view(np.float32)
    r = fastrelu.relu(x)
    assert r.view(np.uint32).tolist() == [0x7FC00123, 0xFFC00123]
    assert fastrelu.relu_(x.copy()).view(np.uint32).tolist() == [0x7FC00123, 0xFFC00123]


@pytest.mark.parametrize("dtype", FLOATS)
def test_negative_zero_becomes_positive_zero(dtype):
    """-0.0 -> +0.0 with signbit False, also for -inf, negative subnormals and finfo.min."""
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([-0.0, -np.inf, -tiny, np.finfo(dtype).min, -1.0] * 20, dtype=dtype)
    for result in (fastrelu.relu(x), fastrelu.relu_(x.copy()), fastrelu.relu(x[::-1])):
        assert not np.signbit(result).any()
        assert (result == 0).all()
        assert (bits(result) == 0).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_positive_specials_kept(dtype):
    """+inf, the smallest subnormal, the largest subnormal, tiny and finfo.max are kept."""
    fi = np.finfo(dtype)
    x = np.array([np.inf, fi.smallest_subnormal, fi.smallest_normal - fi.smallest_subnormal,
                  fi.smallest_normal, fi.max, fi.eps] * 17, dtype=dtype)
    assert_same(fastrelu.relu(x), x)
    assert_same(fastrelu.relu_grad(x), np.ones_like(x))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["qnan", "-qnan", "qnan-payload", "-qnan-payload", "snan",
                                  "-snan", "nan-all-ones", "-nan-all-ones"])
def test_every_nan_kept(dtype, name):
    """Every kind of NaN (sign, quiet/signalling, payload) is returned bit-exactly by
    relu and gives 0 in relu_grad and relu_backward."""
    pattern = float_special_bits(dtype)[name]
    x = from_bits([pattern] * 70, dtype)
    assert (bits(fastrelu.relu(x)) == pattern).all()
    assert (bits(fastrelu.relu_(x.copy())) == pattern).all()
    assert (bits(fastrelu.relu_grad(x)) == 0).all()
    g = np.full(70, np.inf, dtype=dtype)
    assert (bits(fastrelu.relu_backward(g, x)) == 0).all()
    # as a gradient where x > 0 it passes through untouched
    assert (bits(fastrelu.relu_backward(x, np.ones(70, dtype=dtype))) == pattern).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_all_float16_or_sampled_bit_patterns(dtype):
    """Every float16 bit pattern (and a sample of float32/float64 ones) against the oracle."""
    ut = oracle.uint_dtype(dtype)
    if dtype == "float16":
        raw = np.arange(1 << 16, dtype=ut)
    else:
        rng = np.random.default_rng(7)
        raw = rng.integers(0, np.iinfo(ut).max, size=1 << 16, dtype=ut, endpoint=True)
    x = raw.view(dtype)
    assert_same(fastrelu.relu(x), oracle.relu(x))
    assert_same(fastrelu.relu_grad(x), oracle.relu_grad(x))
    g = raw[::-1].copy().view(dtype)
    assert_same(fastrelu.relu_backward(g, x), oracle.relu_backward(g, x))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_signed_integer_extremes(dtype):
    """iinfo.min -> 0, -1 -> 0, 0 -> 0, max kept; grad 1 only for x > 0."""
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max] * 11, dtype=dtype)
    expected = np.array([0, 0, 0, 0, 1, info.max - 1, info.max] * 11, dtype=dtype)
    assert_same(fastrelu.relu(x), expected)
    assert_same(fastrelu.relu_(x.copy()), expected)
    assert_same(fastrelu.relu_grad(x), np.array([0, 0, 0, 0, 1, 1, 1] * 11, dtype=dtype))
    g = np.full_like(x, info.min)
    assert_same(fastrelu.relu_backward(g, x),
                np.array([0, 0, 0, 0, info.min, info.min, info.min] * 11, dtype=dtype))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_unsigned_integer_extremes(dtype):
    """Unsigned: relu is the identity (also with the top bit set); grad 1 for x != 0."""
    info = np.iinfo(dtype)
    half = 1 << (8 * np.dtype(dtype).itemsize - 1)
    x = np.array([0, 1, half - 1, half, half + 1, info.max - 1, info.max] * 11, dtype=dtype)
    assert_same(fastrelu.relu(x), x.copy())
    assert_same(fastrelu.relu_grad(x), np.array([0, 1, 1, 1, 1, 1, 1] * 11, dtype=dtype))
    g = np.full_like(x, info.max)
    assert_same(fastrelu.relu_backward(g, x),
                np.tile(np.array([0] + [info.max] * 6, dtype=dtype), 11))


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_special_values_against_oracle(dtype):
    """The full special-value list of each dtype, in every order, against the oracle."""
    s = special_values(dtype)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = np.tile(s, 9)[rng.permutation(9 * len(s))]
        assert_same(fastrelu.relu(x), oracle.relu(x))
        assert_same(fastrelu.relu_grad(x), oracle.relu_grad(x))
        g = np.tile(s, 9)[rng.permutation(9 * len(s))]
        assert_same(fastrelu.relu_backward(g, x), oracle.relu_backward(g, x))


def test_integer_special_table_is_complete():
    """Sanity check of the value generator: it includes the integer extremes."""
    for dt in ("int8", "uint64"):
        vals = int_specials(dt)
        assert np.iinfo(dt).max in vals.values() and np.iinfo(dt).min in vals.values()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [5, 4097, 300_000])
def test_no_floating_point_warnings(dtype, n):
    """NaN and inf inputs raise no RuntimeWarning (invalid/overflow) in any function, also
    with every NumPy FP error set to raise."""
    x = np.resize(special_values(dtype), n)
    g = x[::-1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            fastrelu.relu(x)
            fastrelu.relu(x[::2])
            fastrelu.relu(x.byteswap().view(x.dtype.newbyteorder()))
            fastrelu.relu_(x.copy())
            fastrelu.relu_grad(x)
            fastrelu.relu_grad(x[::-1])
            fastrelu.relu_backward(g, x)
            fastrelu.relu_backward(g[::2], x[::-2])
            fastrelu.ufuncs.relu(x)
