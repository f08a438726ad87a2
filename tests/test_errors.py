"""Every error case of every operation of the registry (and of its in-place
twin): the exception type, a message naming the dtype/problem (never
Cython's buffer texts), and nothing written -- not to the inputs, not to
``out`` -- before it is raised."""
import array

import numpy as np
import pytest

from helpers import (BINARY_OPS, INPLACE_OPS, INT_DTYPE_NAMES, OPS, assert_same, call,
                     call_inplace, expected, make_layout, op_dtype_params, op_id, param_sets,
                     reference_error, snapshot)

CYTHON_TEXTS = ("Buffer dtype mismatch", "ndim", "Big-endian buffer not supported",
                "Buffer has wrong number of dimensions", "buffer source array is read-only")

UNSUPPORTED = [
    np.dtype("complex64"), np.dtype("complex128"), np.dtype("clongdouble"),
    np.dtype("bool"), np.dtype("object"), np.dtype("U3"), np.dtype("S3"), np.dtype("V8"),
    np.dtype("datetime64[s]"), np.dtype("datetime64[ns]"), np.dtype("timedelta64[ms]"),
    np.dtype([("a", "<i4")]), np.dtype([("a", "<f8"), ("b", "<i2")]), np.dtype("longdouble"),
    np.dtype(">c16"), np.dtype(">M8[s]"), np.dtype("longdouble").newbyteorder(),
]


def unsupported_dtypes(op):
    """The dtypes ``op`` refuses: never-supported ones, and the integer dtypes
    for a float-only op."""
    return UNSUPPORTED + [np.dtype(dt) for dt in INT_DTYPE_NAMES if dt not in op.dtype_names]


def first_params(op, dtype="float64"):
    return param_sets(op, dtype)[0]


def unsupported_array(dtype, n=5):
    """An array of an unsupported dtype with some (non-zero) content."""
    a = np.zeros(n, dtype=dtype)
    if dtype.kind in "iufcMm":
        a[...] = np.arange(n) - 2 if dtype.kind not in "Mmu" else np.arange(n)
    elif dtype.kind == "b":
        a[::2] = True
    elif dtype.kind in "US":
        a[...] = "ab"
    elif dtype.kind == "O":
        a[...] = ([-1, "x", None, 2.5, -3] * n)[:n]
    return a


def check_message(excinfo, *needles):
    """The message contains every needle and none of Cython's own buffer texts."""
    msg = str(excinfo.value)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    for text in CYTHON_TEXTS:
        assert text not in msg, f"Cython text {text!r} in {msg!r}"


def assert_unchanged(a, before):
    """``a`` still holds exactly ``before``: the same bytes (the same objects for
    object arrays)."""
    assert a.dtype == before.dtype and a.shape == before.shape
    if a.dtype.hasobject:
        assert all(x is y for x, y in zip(a.ravel(), before.ravel()))
    else:
        assert a.tobytes() == before.tobytes()


def good(dtype="float64", n=5):
    return np.linspace(-2, 2, n).astype(dtype)


# --- unsupported dtypes -------------------------------------------------------------------

def variants(op):
    """How an unsupported operand reaches ``op``: as x (and, for a backward, as
    grad_output or both), or to the in-place twin."""
    if op.arity == 2:
        return ["x", "grad_output", "both"]
    return ["x", "inplace"] if op.inplace else ["x"]


@pytest.mark.parametrize("op, variant, dtype",
                         [(op, v, dt) for op in OPS for v in variants(op)
                          for dt in unsupported_dtypes(op)], ids=op_id)
def test_unsupported_dtype(op, variant, dtype):
    """TypeError naming the dtype, contiguous, strided and 0-d; no data written
    to the inputs or to a valid out."""
    params = first_params(op)
    for layout in ("C", "step2", "0-d"):
        bad = unsupported_array(dtype, 10)
        bad = {"C": bad, "step2": bad[::2], "0-d": bad[3, ...]}[layout]
        bad_before = snapshot(bad)
        ok = good("float64", 10)[: bad.size].reshape(bad.shape)
        ok_before = snapshot(ok)
        out = np.full(bad.shape, 7.0)
        with pytest.raises(TypeError) as excinfo:
            if variant == "inplace":
                call_inplace(op, bad, params)
            elif op.arity == 1:
                call(op, (bad,), params, out=out)
            else:
                g, x = {"x": (ok, bad), "grad_output": (bad, ok), "both": (bad, bad)}[variant]
                call(op, (g, x), params, out=out)
        check_message(excinfo, str(dtype))
        assert_unchanged(bad, bad_before)
        assert_same(ok, ok_before)
        assert (out == 7.0).all()


@pytest.mark.parametrize("op, dtype", [(op, dt) for op in OPS for dt in unsupported_dtypes(op)],
                         ids=op_id)
def test_unsupported_dtype_with_out_of_that_dtype(op, dtype):
    """Unsupported operands and an out of that same dtype: TypeError, nothing written."""
    bad = unsupported_array(dtype)
    out = unsupported_array(dtype)[::-1].copy()
    bad_before, out_before = snapshot(bad), snapshot(out)
    with pytest.raises(TypeError) as excinfo:
        call(op, (bad,) * op.arity, first_params(op), out=out)
    check_message(excinfo, str(dtype))
    assert_unchanged(bad, bad_before)
    assert_unchanged(out, out_before)


@pytest.mark.parametrize("op", OPS, ids=op_id)
@pytest.mark.parametrize("value", [True, [True, False], 1 + 2j, [1j, 2], "abc", b"ab", None,
                                   [None], np.datetime64("2020-01-01"), np.bool_(True)],
                         ids=repr)
def test_unsupported_array_likes(op, value):
    """Array-likes that convert to an unsupported dtype: TypeError naming it."""
    dtype = np.asarray(value).dtype
    with pytest.raises(TypeError) as excinfo:
        call(op, (value,) * op.arity, first_params(op))
    check_message(excinfo, str(dtype))


@pytest.mark.parametrize("op, dtype", [(op, dt) for op in OPS for dt in INT_DTYPE_NAMES
                                       if dt not in op.dtype_names], ids=op_id)
def test_float_only_op_refuses_integer_lists(op, dtype):
    """A float-only op refuses integer data also as a list (it becomes int64) or
    an integer scalar: TypeError naming the dtype."""
    for value in ([1, -2, 3], 5, np.array([1, 2], dtype)):
        with pytest.raises(TypeError) as excinfo:
            call(op, (value,) * op.arity, first_params(op))
        check_message(excinfo, str(np.asarray(value).dtype))


# --- the in-place twins on read-only or non-ndarray -----------------------------------------

@pytest.mark.parametrize("op, dtype", op_dtype_params(INPLACE_OPS), ids=op_id)
def test_inplace_readonly(op, dtype):
    """The in-place twin on a read-only array or a broadcast view: ValueError
    naming it read-only, data unchanged; also a read-only view of a writeable
    buffer (the buffer is untouched)."""
    params = first_params(op, dtype)
    for layout in ("readonly", "broadcast-row", "broadcast-scalar"):
        x = make_layout(layout, good(dtype, 9))
        before = snapshot(x)
        with pytest.raises(ValueError) as excinfo:
            call_inplace(op, x, params)
        check_message(excinfo, "read-only")
        assert_same(x, before)
    base = good(dtype, 12)
    view = base[::2]
    view.flags.writeable = False
    before = snapshot(base)
    with pytest.raises(ValueError):
        call_inplace(op, view, params)
    assert_same(base, before)


NON_NDARRAYS = [[-1.0, 2.0], (-1, 2), -1.0, 3, np.float64(-1.0), np.int8(-3),
                array.array("d", [-1.0, 2.0]), memoryview(np.array([-1.0, 2.0])),
                bytearray(b"ab")]


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
@pytest.mark.parametrize("value", NON_NDARRAYS, ids=lambda v: type(v).__name__)
def test_inplace_non_ndarray(op, value):
    """The in-place twin on anything but an ndarray: TypeError (nothing to
    modify in place); the object is unchanged."""
    before = bytes(memoryview(value)) if isinstance(value, (memoryview, array.array,
                                                            bytearray)) else repr(value)
    with pytest.raises(TypeError) as excinfo:
        call_inplace(op, value, first_params(op))
    check_message(excinfo)
    after = bytes(memoryview(value)) if isinstance(value, (memoryview, array.array,
                                                           bytearray)) else repr(value)
    assert after == before


# --- bad out ----------------------------------------------------------------------------------

def bad_outs(x):
    """(name, out, expected exception, message needle) for input ``x``."""
    dt = x.dtype.newbyteorder("=")
    other = np.dtype("float32") if dt != np.dtype("float32") else np.dtype("float64")
    same_size = np.dtype(f"i{dt.itemsize}") if dt.kind != "i" else np.dtype(f"u{dt.itemsize}")
    ro = np.zeros(x.shape, dt)
    ro.flags.writeable = False
    cases = [
        ("shape-longer", np.zeros(x.size + 1, dt), ValueError, "shape"),
        ("shape-shorter", np.zeros(max(x.size - 1, 0), dt), ValueError, "shape"),
        ("shape-2d", np.zeros((1, x.size), dt), ValueError, "shape"),
        ("shape-broadcastable", np.zeros((2,) + x.shape, dt), ValueError, "shape"),
        ("dtype-other", np.zeros(x.shape, other), TypeError, str(other)),
        ("dtype-same-size", np.zeros(x.shape, same_size), TypeError, str(same_size)),
        ("dtype-complex", np.zeros(x.shape, "c16"), TypeError, "complex128"),
        ("dtype-bool", np.zeros(x.shape, "?"), TypeError, "bool"),
        ("dtype-object", np.zeros(x.shape, "O"), TypeError, "object"),
        ("dtype-complex64", np.zeros(x.shape, "c8"), TypeError, "complex64"),
        ("dtype-longdouble", np.zeros(x.shape, "g"), TypeError, str(np.dtype("g"))),
        ("dtype-str", np.zeros(x.shape, "U8"), TypeError, "<U8"),
        ("dtype-bytes", np.zeros(x.shape, "S8"), TypeError, "S8"),
        ("dtype-timedelta", np.zeros(x.shape, "m8[s]"), TypeError, "timedelta64"),
        ("dtype-structured", np.zeros(x.shape, [("a", dt)]), TypeError, "[("),
        ("dtype-and-shape", np.zeros(x.size + 2, other), (TypeError, ValueError), ""),
        ("list", [0] * x.size, TypeError, "list"),
        ("tuple", (0,) * x.size, TypeError, "tuple"),
        ("scalar", 0.0, TypeError, "float"),
        ("memoryview", memoryview(np.zeros(x.shape, dt)), TypeError, "memoryview"),
        ("readonly", ro, ValueError, "read-only"),
        ("broadcast", np.broadcast_to(np.zeros((), dt), x.shape), ValueError, "read-only"),
    ]
    if x.ndim:
        cases.append(("shape-0d", np.zeros((), dt), ValueError, "shape"))
    return cases


@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_bad_out(op, dtype):
    """Every bad out, for operands contiguous, strided, byte-swapped, Fortran and
    0-d: the right exception (TypeError or ValueError itself, not a NumPy
    subclass) and message; neither the operands nor out written."""
    params = first_params(op, dtype)
    for layout in ("C", "step2", "byteswapped", "F-2d", "0-d"):
        x = make_layout(layout, good(dtype, 12))
        arrays = (x[::-1].copy() if x.ndim else x.copy(), x)[-op.arity:]
        for name, out, exc, needle in bad_outs(x):
            befores = [snapshot(a) for a in arrays]
            out_before = snapshot(out) if isinstance(out, np.ndarray) else None
            with pytest.raises(exc) as excinfo:
                call(op, arrays, params, out=out)
            check_message(excinfo, needle)
            assert type(excinfo.value) in (TypeError, ValueError), name
            for a, b in zip(arrays, befores):
                assert_same(a, b)
            if out_before is not None:
                assert_unchanged(out, out_before)


@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_byteswapped_out_of_same_type_accepted(op, dtype):
    """A byte-swapped out of the operands' type is accepted (same type, other
    byte order) and holds the reference's values."""
    x = good(dtype, 40)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    params = first_params(op, dtype)
    out = np.zeros(x.shape, x.dtype.newbyteorder())
    assert call(op, arrays, params, out=out) is out
    assert_same(out.astype(x.dtype), expected(op, arrays, params))


@pytest.mark.parametrize("op, dtype", op_dtype_params(dtypes=("float64", "float32", "int64")),
                         ids=op_id)
@pytest.mark.parametrize("out_dtype", ["complex128", "complex64", "object", "longdouble",
                                       "U8", "S8", "bool", "timedelta64[s]"])
def test_out_of_unsupported_dtype_rejected(op, dtype, out_dtype):
    """An out of an unsupported dtype is refused with fastrelu's own TypeError
    (naming out's dtype) before anything is written, whatever x's dtype
    (float64 included: NumPy compares np.dtype('float64') == None as True,
    which must not matter), and also for a list input (which becomes float64)."""
    x = good(dtype, 6)
    for arrays in ((x[::-1].copy(), x)[-op.arity:], ([-1.0, 2.0, np.nan] * 2,) * op.arity):
        out = np.zeros(6, out_dtype)
        before = snapshot(out)
        with pytest.raises(TypeError) as excinfo:
            call(op, arrays, first_params(op, dtype), out=out)
        assert type(excinfo.value) is TypeError
        check_message(excinfo, str(np.dtype(out_dtype)))
        assert_unchanged(out, before)


# --- the operands of a backward ---------------------------------------------------------------

OTHERS = ["float32", "float64", "int32", "uint8", "int64", "bool", "complex128"]


@pytest.mark.parametrize("op, dtype, other",
                         [(op, dt, other) for op, dt in op_dtype_params(BINARY_OPS)
                          for other in OTHERS if np.dtype(other) != np.dtype(dt)], ids=op_id)
def test_backward_dtype_mismatch(op, dtype, other):
    """grad_output and x of different dtypes: TypeError naming the other dtype,
    even where casting would be safe; nothing written (also with a valid out)."""
    x = good(dtype, 8)
    g = good(other, 8) if other not in ("bool", "complex128") else np.ones(8, other)
    out = np.full(8, 5, dtype)
    params = first_params(op, dtype)
    for args in ((g, x), (x, g)):
        befores = [snapshot(a) for a in (*args, out)]
        for kwargs in ({}, {"out": out}):
            with pytest.raises(TypeError) as excinfo:
                call(op, args, params, **kwargs)
            check_message(excinfo, str(np.dtype(other)))
        for a, b in zip((*args, out), befores):
            assert a.tobytes() == b.tobytes()


SHAPE_PAIRS = [((3,), (1,)), ((1,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 3), (3, 2)),
               ((2, 3), (2, 1)), ((), (4,)), ((4,), ()), ((0,), (1,)), ((5,), (6,)),
               ((2, 3), (6,))]


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS), ids=op_id)
def test_backward_shape_mismatch(op, dtype):
    """grad_output and x of different shapes: ValueError, no broadcasting,
    nothing written; also for lists of different lengths."""
    params = first_params(op, dtype)
    for g_shape, x_shape in SHAPE_PAIRS:
        g = np.resize(good(dtype, 6), g_shape)
        x = np.resize(good(dtype, 6)[::-1], x_shape)
        out = np.full(x_shape, 5, dtype)
        befores = [snapshot(a) for a in (g, x, out)]
        for kwargs in ({}, {"out": out}):
            with pytest.raises(ValueError) as excinfo:
                call(op, (g, x), params, **kwargs)
            check_message(excinfo, "shape")
        for a, b in zip((g, x, out), befores):
            assert_same(a, b)
    with pytest.raises(ValueError):
        call(op, ([1.0, 2.0, 3.0], [1.0]), params)


# --- parameters -----------------------------------------------------------------------------

NOT_REAL = [True, False, np.bool_(True), "1", b"1", 1j, np.complex64(1), None, [1.0], (1.0,),
            np.array([1.0]), np.array([[2]]), np.array(True), np.array(1 + 1j), np.array("1"),
            object(), np.datetime64(1, "s"), np.timedelta64(1, "s")]
#: (np.timedelta64 is a subclass of np.signedinteger: refused, but by a message
#: of its own conversion, which does not name the parameter.)
UNNAMED = (np.timedelta64,)
#: Real numbers that no integer dtype takes (not finite) or that int8 / uint8 /
#: int64 / uint64 do not.
OUT_OF_RANGE = [np.nan, np.inf, -np.inf, 1e300, 128, -129, 256, -1, -0.5 - 1, 2**63, 2**64,
                -2**63 - 1, np.float32(np.nan), np.uint64(2**64 - 1), 300.5]

PARAM_OPS = [op for op in OPS if op.params]


@pytest.mark.parametrize("op, dtype", op_dtype_params(PARAM_OPS), ids=op_id)
def test_parameter_not_a_real_number(op, dtype):
    """A parameter that is not a real number (bool, str, complex, None, a
    sequence, an array of ndim > 0, ...): TypeError naming the parameter,
    before anything is written to out or, in place, to x."""
    base = first_params(op, dtype)
    x = good(dtype, 9)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    for index, param in enumerate(op.params):
        for value in NOT_REAL:
            params = base[:index] + (value,) + base[index + 1:]
            out = np.full(x.shape, 3, dtype)
            targets = [(lambda: call(op, arrays, params, out=out), out),
                       (lambda: call(op, arrays, params, keywords=True), None)]
            if op.inplace:
                y = x.copy()
                targets.append((lambda: call_inplace(op, y, params), y))
            for fn, target in targets:
                before = snapshot(target) if target is not None else None
                with pytest.raises(TypeError) as excinfo:
                    fn()
                check_message(excinfo, *(() if isinstance(value, UNNAMED) else (param.name,)))
                if target is not None:
                    assert_same(target, before)


@pytest.mark.parametrize("op, dtype", op_dtype_params(PARAM_OPS, INT_DTYPE_NAMES), ids=op_id)
def test_parameter_out_of_integer_range(op, dtype):
    """A bound or value that is not finite or, truncated, out of an integer
    dtype's range: ValueError (exactly when the reference raises it), before
    anything is written to out or, in place, to x."""
    base = first_params(op, dtype)
    x = good(dtype, 9)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    refused = 0
    for index in range(len(op.params)):
        for value in OUT_OF_RANGE:
            params = base[:index] + (value,) + base[index + 1:]
            error = reference_error(op, arrays, params)
            out = np.full(x.shape, 3, dtype)
            y = x.copy()
            calls = [(lambda: call(op, arrays, params, out=out), out)]
            if op.inplace:
                calls.append((lambda: call_inplace(op, y, params), y))
            for fn, target in calls:
                before = snapshot(target)
                if error is None:
                    assert_same(fn(), expected(op, arrays, params))
                else:
                    with pytest.raises(error):
                        fn()
                    assert_same(target, before)
                    refused += 1
    assert refused >= len(op.params) * 4       # NaN and the infinities at least


def test_reference_raises_the_documented_errors():
    """The reference, which the tests above follow, raises TypeError and
    ValueError where the docs say."""
    import fastrelu._reference as ref
    x = np.arange(-3, 4, dtype=np.int8)
    for args, exc in [((x, 1.5j, 0), TypeError), ((x, True, 0), TypeError),
                      ((x, 0, None), TypeError), ((x, np.array([1]), 0), TypeError),
                      ((x, 200, 0), ValueError), ((x, 0, np.nan), ValueError),
                      ((x, -129, 0), ValueError)]:
        with pytest.raises(exc):
            ref.threshold(*args)
    with pytest.raises(TypeError):
        ref.leaky_relu(x)
    with pytest.raises(TypeError):
        ref.relu_backward(x, x.astype(np.int16))
    with pytest.raises(ValueError):
        ref.relu_backward(x, x[1:])
    with pytest.raises(TypeError):
        ref.relu(np.zeros(2, bool))
