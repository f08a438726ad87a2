"""relu6 and leaky_relu (out-of-place, in place, backward) against NumPy written out."""
import numpy as np
import pytest

import fastrelu as fr

FLOATS = ["float16", "float32", "float64"]
ALL = FLOATS + ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
SIZES = list(range(0, 70)) + [1000, 4097, 300_001]


def values(dtype, n, seed=0):
    """Random-sign values spanning [-10, 10] (so both clips of relu6 are hit),
    with the special values at the front."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        x = (rng.standard_normal(n) * 5).astype(dtype)
        special = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 6.0, 5.999, -6.0,
                            np.finfo(dtype).smallest_subnormal,
                            -np.finfo(dtype).smallest_subnormal,
                            np.finfo(dtype).max, np.finfo(dtype).min], dtype=dtype)
    else:
        lo = 0 if dtype.kind == "u" else -10
        x = rng.integers(lo, 11, size=n).astype(dtype)
        info = np.iinfo(dtype)
        special = np.array([info.min, info.max, 0, 5, 6, 7], dtype=dtype)
    k = min(n, special.size)
    x[:k] = special[:k]
    return x


def bits(a):
    return a.view(f"u{a.itemsize}")


def assert_same(result, expected):
    assert isinstance(result, np.ndarray)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(bits(result), bits(expected))


# --- the oracle, written out ----------------------------------------------------------

def relu6_oracle(x):
    out = x.copy()
    if x.dtype.kind == "f":
        out[x <= 0] = 0          # NaN compares False: kept with its bits
        out[x >= 6] = 6
    else:
        out[x < 0] = 0
        out[x > 6] = 6
    return out


def relu6_backward_oracle(g, x):
    out = np.zeros_like(g)
    mask = (x > 0) & (x < 6)
    out[mask] = g[mask]
    return out


def opmath(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def leaky_oracle(x, slope):
    scaled = (x.astype(opmath(x.dtype)) * opmath(x.dtype)(slope)).astype(x.dtype)
    out = x.copy()
    neg = ~(x > 0)
    out[neg] = scaled[neg]
    return out


def leaky_backward_oracle(g, x, slope):
    scaled = (g.astype(opmath(g.dtype)) * opmath(g.dtype)(slope)).astype(g.dtype)
    out = g.copy()
    neg = ~(x > 0)
    out[neg] = scaled[neg]
    return out


# --- relu6 ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("n", SIZES)
def test_relu6(dtype, n):
    x = values(dtype, n)
    before = x.copy()
    assert_same(fr.relu6(x), relu6_oracle(x))
    assert_same(x, before)                    # out-of-place leaves x alone
    out = np.empty_like(x)
    assert fr.relu6(x, out=out) is out
    assert_same(out, relu6_oracle(x))
    y = x.copy()
    assert fr.relu6_(y) is y
    assert_same(y, relu6_oracle(x))


@pytest.mark.parametrize("dtype", ALL)
def test_relu6_layouts(dtype):
    x = values(dtype, 600).reshape(20, 30)
    for view in (x[::2], x[:, ::-3], x.T, np.asfortranarray(x), x[3]):
        assert_same(fr.relu6(view), relu6_oracle(view))
    swapped = x.astype(x.dtype.newbyteorder())
    assert_same(fr.relu6(swapped), relu6_oracle(x))
    a = x.copy()
    fr.relu6_(a[::2])
    expected = x.copy()
    expected[::2] = relu6_oracle(x[::2])
    assert_same(a, expected)


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("n", [0, 1, 17, 64, 65, 4097])
def test_relu6_backward(dtype, n):
    x = values(dtype, n, seed=1)
    g = values(dtype, n, seed=2)
    assert_same(fr.relu6_backward(g, x), relu6_backward_oracle(g, x))
    # the ReLU6 output gives the same mask
    assert_same(fr.relu6_backward(g, fr.relu6(x)), relu6_backward_oracle(g, x))
    assert_same(fr.relu6_backward(g[::-1], x[::-1]), relu6_backward_oracle(g[::-1], x[::-1]))


def test_relu6_backward_masks_inf_and_nan_gradients():
    x = np.array([-1.0, 0.0, 3.0, 6.0, 9.0, np.nan])
    g = np.array([np.inf, np.nan, np.nan, np.inf, np.nan, np.inf])
    out = fr.relu6_backward(g, x)
    assert_same(out, np.array([0.0, 0.0, np.nan, 0.0, 0.0, 0.0]))
    assert not np.signbit(out[[0, 1, 3, 4, 5]]).any()


# --- leaky relu --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -0.5])
def test_leaky_relu(dtype, n, slope):
    x = values(dtype, n)
    before = x.copy()
    with np.errstate(all="ignore"):
        expected = leaky_oracle(x, slope)
    assert_same(fr.leaky_relu(x, slope), expected)
    assert_same(fr.leaky_relu(x, negative_slope=slope), expected)
    assert_same(x, before)
    out = np.empty_like(x)
    assert fr.leaky_relu(x, slope, out=out) is out
    assert_same(out, expected)
    y = x.copy()
    assert fr.leaky_relu_(y, slope) is y
    assert_same(y, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_leaky_relu_default_slope_and_layouts(dtype):
    x = values(dtype, 600).reshape(20, 30)
    assert_same(fr.leaky_relu(x), leaky_oracle(x, 0.01))
    for view in (x[::2], x[:, ::-3], x.T, x[3]):
        assert_same(fr.leaky_relu(view, 0.3), leaky_oracle(view, 0.3))
    swapped = x.astype(x.dtype.newbyteorder())
    assert_same(fr.leaky_relu(swapped, 0.3), leaky_oracle(x, 0.3))


def test_leaky_relu_special_values():
    x = np.array([-2.0, -0.0, 0.0, np.nan, -np.inf, np.inf, -5e-324])
    out = fr.leaky_relu(x, 0.1)
    assert_same(out, np.array([-0.2, -0.0, 0.0, np.nan, -np.inf, np.inf, -0.0]))
    assert np.signbit(out[1])                 # a scaling keeps the sign of zero


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [0, 1, 17, 64, 65, 4097])
def test_leaky_relu_backward(dtype, n):
    x = values(dtype, n, seed=1)
    g = values(dtype, n, seed=2)
    with np.errstate(all="ignore"):
        expected = leaky_backward_oracle(g, x, 0.1)
    assert_same(fr.leaky_relu_backward(g, x, 0.1), expected)
    assert_same(fr.leaky_relu_backward(g, x, negative_slope=0.1), expected)
    assert_same(fr.leaky_relu_backward(g[::-1], x[::-1], 0.1),
                leaky_backward_oracle(g[::-1], x[::-1], 0.1))


@pytest.mark.parametrize("func", [fr.leaky_relu, fr.leaky_relu_])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool", "complex128"])
def test_leaky_relu_rejects_non_floats(func, dtype):
    x = np.zeros(4, dtype=dtype)
    with pytest.raises(TypeError, match=str(np.dtype(dtype))):
        func(x)
    assert not x.any()


def test_leaky_relu_slope_must_be_a_real_number():
    with pytest.raises(TypeError):
        fr.leaky_relu(np.ones(3), "0.1")
    with pytest.raises(TypeError):
        fr.leaky_relu(np.ones(3), None)


@pytest.mark.parametrize("func, args", [
    (fr.relu6, ()), (fr.leaky_relu, (0.1,)),
])
def test_family_errors(func, args):
    x = np.array([-1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        func(x, *args, out=np.empty(3))
    with pytest.raises(TypeError, match="dtype"):
        func(x, *args, out=np.empty(2, np.float32))
    ro = np.empty(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        func(x, *args, out=ro)
    with pytest.raises(TypeError):
        func(x, *args, out=[0.0, 0.0])


@pytest.mark.parametrize("func", [fr.relu6_, fr.leaky_relu_])
def test_family_inplace_errors(func):
    with pytest.raises(TypeError):
        func([1.0, -1.0])
    ro = np.array([-1.0, 1.0])
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        func(ro)
    assert ro[0] == -1.0


@pytest.mark.parametrize("func", [fr.relu6_backward, fr.leaky_relu_backward])
def test_family_backward_errors(func):
    with pytest.raises(TypeError, match="dtype"):
        func(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        func(np.ones(3), np.ones(4))


def test_family_no_floating_point_warnings():
    x = np.array([np.nan, -np.inf, np.inf, -1e-310, 1e300, -1e300])
    with np.errstate(all="raise"):
        fr.relu6(x)
        fr.relu6(x[::2])
        fr.leaky_relu(x, 1e10)
        fr.leaky_relu(x[::2], 1e-300)
        fr.leaky_relu_backward(x, x[::-1].copy(), 1e10)
