"""Scalar parameters (slopes, bounds, values) are cast as the reference says,
for every operation that has them and every dtype: Python and NumPy ints and
floats, 0-d arrays, the extremes of every dtype, values that overflow,
underflow or round to a tie, NaN and infinities, -0.0 -- as a parameter of
the function, of the function with out=, and of the in-place twin. What the
reference refuses (a ValueError for an integer dtype) is refused the same way
(see test_errors.py for the arguments that are not real numbers)."""
import numpy as np
import pytest

from fastrelu import _reference
from fastrelu._registry import BY_NAME
from helpers import (OPS, assert_same, call, call_inplace, expected, op_dtype_params, op_id,
                     param_sets, reference_error, snapshot, special_values)

pytestmark = pytest.mark.core

PARAM_OPS = [op for op in OPS if op.params]

#: Real numbers, each tried as every parameter of every op and dtype.
REALS = [
    0, 1, -1, 2, 5, 6, 7, 127, 128, -128, -129, 255, 256, 300, -300, 2**15, 2**16, 2**31,
    2**32, -2**31 - 1, 2**63 - 1, -2**63, 2**63, 2**64 - 1, 2**64, 10**30, -10**30,
    2**53 + 1, 2**24 + 1, 2**11 + 1,
    0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.1, 1e-8, -1e-300, 5e-324, 1e300, -1e300,
    65504.0, 65519.0, 65520.0, -65520.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 3.4e38, 3.5e38,
    float("nan"), float("-nan"), float("inf"), float("-inf"),
    np.float16(-3.5), np.float16(65504), np.float32(2.5), np.float32(-1e-45), np.float32(3e38),
    np.float64(-7.75), np.float64(1e308), np.int8(-5), np.int16(-300), np.int32(70000),
    np.int64(-2**63), np.uint8(200), np.uint16(65535), np.uint32(2**32 - 1),
    np.uint64(2**64 - 1), np.longdouble("3.25"), np.longdouble("1e4000"),
    np.longdouble("-1e-4000"), np.array(1.5), np.array(7, np.int16), np.array(-2.5, np.float32),
    np.array(2**64 - 1, np.uint64), np.array(np.nan, np.float16),
]


def reals(kind):
    """REALS for a parameter of ``kind``: without NaN for a slope (NaN times a NaN
    element is one of the two NaNs, IEEE leaves open which: test_nan_slope)."""
    return [v for v in REALS if kind != "slope" or not np.isnan(np.asarray(v, np.longdouble))]


def near(op, value, dtype):
    """Elements of ``dtype`` at and around ``value`` cast as the reference casts
    a bound (so the comparisons with it are all exercised); none if the cast
    is an error."""
    try:
        c = _reference._cast(value, np.dtype(dtype), op, "threshold")
    except ValueError:
        return np.zeros(0, dtype)
    if c.dtype.kind == "f":
        with np.errstate(over="ignore"):
            return np.array([c, np.nextafter(c, -np.inf), np.nextafter(c, np.inf)], dtype)
    info = np.iinfo(dtype)
    return np.array([int(c), max(int(c) - 1, info.min), min(int(c) + 1, info.max)], dtype)


def outcome(fn):
    """The result of ``fn()``, or the type of the TypeError / ValueError it raised."""
    try:
        return fn()
    except (TypeError, ValueError) as e:
        return type(e)


def check(op, dtype, params, x, g):
    """The function, the function with out=, and the in-place twin agree with
    the reference on these parameters: the same bits, or the same error
    raised before anything is written."""
    arrays = (g, x)[-op.arity:]
    error = reference_error(op, arrays, params)
    want = None if error else expected(op, arrays, params)
    before = [snapshot(a) for a in arrays]
    out = np.full(x.shape, 3, x.dtype)
    calls = [("function", lambda: call(op, arrays, params), None),
             ("out=", lambda: call(op, arrays, params, out=out), out),
             ("by name", lambda: call(op, arrays, params, keywords=True), None)]
    if op.inplace:
        y = x.copy()
        calls.append(("in place", lambda: call_inplace(op, y, params), y))
    for what, fn, target in calls:
        result = outcome(fn)
        if error:
            assert result is error, f"{what} with {params!r}: {result!r}, not {error.__name__}"
            if target is not None:
                assert_same(target, out if target is out else x, f"{what} wrote before raising")
        else:
            assert isinstance(result, np.ndarray), f"{what} with {params!r}: {result!r}"
            assert_same(result, want, f"{what} with {params!r}")
    for a, b in zip(arrays, before):
        assert_same(a, b)


@pytest.mark.parametrize("op, dtype", op_dtype_params(PARAM_OPS), ids=op_id)
def test_real_parameters_cast_like_the_reference(op, dtype):
    """Every real number of REALS as each parameter (the others at a generated
    value), on x holding the special values and the elements at and around the
    cast value."""
    (base,) = param_sets(op, dtype)[:1]
    for index, param in enumerate(op.params):
        for value in reals(param.kind):
            params = base[:index] + (value,) + base[index + 1:]
            x = np.resize(np.concatenate([special_values(dtype), near(op, value, dtype)]), 70)
            check(op, dtype, params, x, np.resize(special_values(dtype)[::-1], 70))


@pytest.mark.parametrize("op, dtype", op_dtype_params(
    [op for op in PARAM_OPS if op.params[0].kind == "slope"]), ids=op_id)
def test_nan_slope(op, dtype):
    """A NaN slope: the elements scaled by it are NaN (which NaN, where the
    element is NaN too, IEEE leaves open), the others are the reference's."""
    x = np.resize(special_values(dtype), 70)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    for slope in (np.nan, -np.nan, np.float32(np.nan)):
        result = call(op, arrays, (slope,))
        scaled = ~(x > 0)
        assert np.isnan(result[scaled]).all()
        assert_same(result[~scaled], expected(op, arrays, (slope,))[~scaled])


def test_the_reference_casts_as_documented():
    """Spot checks of the reference's casts against NumPy's own conversions
    (where NumPy rounds once): it is what the tests above compare with."""
    t = BY_NAME["threshold"]

    def cast(value, dtype):
        return _reference._cast(value, np.dtype(dtype), t, "threshold")
    for value, dtype in [(0.1, "float32"), (65519.0, "float16"), (1e300, "float32"),
                         (-0.0, "float16"), (2**63 + 2**39 + 1, "float32"),
                         (np.int64(2**60 + 2**36 + 1), "float16"), (5e-324, "float32")]:
        with np.errstate(over="ignore"):
            assert_same(cast(value, dtype), np.array(value).astype(dtype))
    assert_same(cast(65520.0, "float16"), np.array(np.inf, np.float16))
    assert_same(cast(-2.7, "int8"), np.array(-2, np.int8))
    assert_same(cast(np.float32(300.9), "int16"), np.array(300, np.int16))
    assert_same(cast(10**400, "float64"), np.array(np.inf))
    for value, dtype in [(128, "int8"), (-1, "uint64"), (np.nan, "int32"), (np.inf, "uint8"),
                         (255.5, "int8"), (2**64, "uint64")]:
        with pytest.raises(ValueError):
            cast(value, dtype)


@pytest.mark.parametrize("op", PARAM_OPS, ids=op_id)
def test_ints_just_below_2_1024_overflow_to_inf(op):
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    for value in (2**1024 - 1, -(2**1024 - 1), 2**1024 - 2**970):
        params = (value,) * len(op.params)
        assert_same(call(op, arrays, params), expected(op, arrays, params))


@pytest.mark.parametrize("op", PARAM_OPS, ids=op_id)
def test_integer_parameters_are_rounded_once(op):
    x = np.array([-1.0, 0.0, 2.0, 1.1529216e18, 9.223373e18], np.float32)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    for value in (2**60 + 2**36 + 1, np.uint64(2**63 + 2**39 + 1), np.int64(-2**62 - 2**38 - 1)):
        params = (value,) * len(op.params)
        assert_same(call(op, arrays, params), expected(op, arrays, params))
