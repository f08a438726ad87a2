"""Every error case of every function: the exception type, a message naming the
dtype/problem (never Cython's buffer texts), nothing written to the caller's
arrays, and no references leaked by failing calls."""
import array
import sys

import numpy as np
import pytest

import fastrelu
from oracle import DTYPE_NAMES, assert_same, make_layout, snapshot

CYTHON_TEXTS = ("Buffer dtype mismatch", "ndim", "Big-endian buffer not supported",
                "Buffer has wrong number of dimensions", "buffer source array is read-only")

UNSUPPORTED = [
    np.dtype("complex64"), np.dtype("complex128"), np.dtype("clongdouble"),
    np.dtype("bool"), np.dtype("object"), np.dtype("U3"), np.dtype("S3"), np.dtype("V8"),
    np.dtype("datetime64[s]"), np.dtype("datetime64[ns]"), np.dtype("timedelta64[ms]"),
    np.dtype([("a", "<i4")]), np.dtype([("a", "<f8"), ("b", "<i2")]), np.dtype("longdouble"),
    np.dtype(">c16"), np.dtype(">M8[s]"), np.dtype("longdouble").newbyteorder(),
]
UNSUPPORTED_IDS = [str(dt) for dt in UNSUPPORTED]


def unsupported_array(dtype, n=5):
    """An array of an unsupported dtype with some (non-zero) content."""
    a = np.zeros(n, dtype=dtype)
    if dtype.kind in "iufcMm":
        a[...] = np.arange(n) - 2 if dtype.kind not in "Mm" else np.arange(n)
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
    """``a`` still holds exactly ``before``: the same bytes (the same objects for object
    arrays)."""
    assert a.dtype == before.dtype and a.shape == before.shape
    if a.dtype.hasobject:
        assert all(x is y for x, y in zip(a.ravel(), before.ravel()))
    else:
        assert a.tobytes() == before.tobytes()


def good(dtype="float64", n=5):
    return np.linspace(-2, 2, n).astype(dtype)


# --- unsupported dtypes -------------------------------------------------------------

@pytest.mark.parametrize("dtype", UNSUPPORTED, ids=UNSUPPORTED_IDS)
@pytest.mark.parametrize("func", ["relu", "relu_", "relu_grad", "relu_backward-x",
                                  "relu_backward-g", "relu_backward-both"])
@pytest.mark.parametrize("layout", ["C", "step2", "0-d"])
def test_unsupported_dtype(func, dtype, layout):
    """TypeError naming the dtype; no data written to the inputs or to a valid out."""
    bad = unsupported_array(dtype, 10)
    if layout == "step2":
        bad = bad[::2]
    elif layout == "0-d":
        bad = bad[3, ...]
    bad_before = snapshot(bad)
    ok = good("float64", 10)[: bad.size].reshape(bad.shape)
    ok_before = snapshot(ok)
    out = np.full(bad.shape, 7.0)
    with pytest.raises(TypeError) as excinfo:
        if func == "relu":
            fastrelu.relu(bad)
        elif func == "relu_":
            fastrelu.relu_(bad)
        elif func == "relu_grad":
            fastrelu.relu_grad(bad, out=out)
        elif func == "relu_backward-x":
            fastrelu.relu_backward(ok, bad, out=out)
        elif func == "relu_backward-g":
            fastrelu.relu_backward(bad, ok, out=out)
        else:
            fastrelu.relu_backward(bad, bad)
    check_message(excinfo, str(dtype))
    assert_unchanged(bad, bad_before)
    assert_same(ok, ok_before)
    assert (out == 7.0).all()


@pytest.mark.parametrize("func", ["relu", "relu_grad"])
@pytest.mark.parametrize("dtype", UNSUPPORTED, ids=UNSUPPORTED_IDS)
def test_unsupported_dtype_with_out(func, dtype):
    """relu(x, out=...) with unsupported x and an out of that same dtype: TypeError."""
    bad = unsupported_array(dtype)
    out = unsupported_array(dtype)[::-1].copy()
    bad_before, out_before = snapshot(bad), snapshot(out)
    with pytest.raises(TypeError) as excinfo:
        getattr(fastrelu, func)(bad, out=out)
    check_message(excinfo, str(dtype))
    assert_unchanged(bad, bad_before)
    assert_unchanged(out, out_before)


@pytest.mark.parametrize("value", [True, [True, False], 1 + 2j, [1j, 2], "abc", b"ab", None,
                                   [None], np.datetime64("2020-01-01"), np.bool_(True)])
def test_unsupported_array_likes(value):
    """Array-likes that convert to an unsupported dtype: TypeError naming it."""
    dtype = np.asarray(value).dtype
    for func in (fastrelu.relu, fastrelu.relu_grad,
                 lambda v: fastrelu.relu_backward(v, v)):
        with pytest.raises(TypeError) as excinfo:
            func(value)
        check_message(excinfo, str(dtype))


# --- relu_ on read-only or non-ndarray ---------------------------------------------

@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["readonly", "broadcast-row", "broadcast-scalar"])
def test_relu_inplace_readonly(dtype, layout):
    """relu_ on a read-only array (or a broadcast view): ValueError, data unchanged."""
    x = make_layout(layout, good(dtype, 9))
    before = snapshot(x)
    with pytest.raises(ValueError) as excinfo:
        fastrelu.relu_(x)
    check_message(excinfo, "read-only")
    assert_same(x, before)


def test_relu_inplace_readonly_view_of_writeable():
    """A read-only view of a writeable buffer is refused; the buffer is untouched."""
    base = good("float32", 12)
    view = base[::2]
    view.flags.writeable = False
    before = snapshot(base)
    with pytest.raises(ValueError):
        fastrelu.relu_(view)
    assert_same(base, before)


@pytest.mark.parametrize("value", [
    [-1.0, 2.0], (-1, 2), -1.0, 3, np.float64(-1.0), np.int8(-3),
    array.array("d", [-1.0, 2.0]), memoryview(np.array([-1.0, 2.0])), bytearray(b"ab"),
], ids=lambda v: type(v).__name__)
def test_relu_inplace_non_ndarray(value):
    """relu_ on anything but an ndarray: TypeError (nothing to modify in place)."""
    with pytest.raises(TypeError) as excinfo:
        fastrelu.relu_(value)
    check_message(excinfo)
    if isinstance(value, list):
        assert value == [-1.0, 2.0]
    if isinstance(value, array.array):
        assert value.tolist() == [-1.0, 2.0]


# --- bad out ---------------------------------------------------------------------------

def _call(func, x, out):
    if func == "relu":
        return fastrelu.relu(x, out=out)
    if func == "relu_grad":
        return fastrelu.relu_grad(x, out=out)
    return fastrelu.relu_backward(x[::-1].copy() if x.ndim else x.copy(), x, out=out)


FUNCS = ["relu", "relu_grad", "relu_backward"]


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
        ("shape-0d", np.zeros((), dt), ValueError, "shape"),
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
    return [c for c in cases if c[0] != "shape-0d" or x.ndim]


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "F-2d", "0-d"])
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_bad_out(func, dtype, layout):
    """Every bad out: the right exception and message; x and out not written."""
    x = make_layout(layout, good(dtype, 12))
    if layout == "byteswapped" and x.dtype.isnative:
        x = make_layout("C", good(dtype, 12))
    for name, out, exc, needle in bad_outs(x):
        x_before = snapshot(x)
        out_before = (snapshot(out) if isinstance(out, np.ndarray) else None)
        with pytest.raises(exc) as excinfo:
            _call(func, x, out)
        check_message(excinfo, needle)
        assert type(excinfo.value) in (TypeError, ValueError), name   # not a NumPy subclass
        assert_same(x, x_before)
        if out_before is not None:
            assert_unchanged(out, out_before)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_byteswapped_out_of_same_type_accepted(func, dtype):
    """A byte-swapped out of x's type is accepted (same type, other byte order)."""
    x = good(dtype, 40)
    out = np.zeros(x.shape, x.dtype.newbyteorder())
    assert _call(func, x, out) is out
    native = {"relu": fastrelu.relu, "relu_grad": fastrelu.relu_grad}.get(func)
    expected = native(x) if native else fastrelu.relu_backward(x[::-1].copy(), x)
    assert_same(out.astype(x.dtype), expected)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("out_dtype", ["complex128", "complex64", "object", "longdouble",
                                       "U8", "S8", "bool", "timedelta64[s]"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_out_of_unsupported_dtype_rejected(func, dtype, out_dtype):
    """An out of an unsupported dtype is refused with fastrelu's own TypeError (naming
    out's dtype) before anything is written, whatever x's dtype (float64 included:
    NumPy compares np.dtype('float64') == None as True, which must not matter)."""
    x = good(dtype, 6)
    out = np.zeros(6, out_dtype)
    before = snapshot(out)
    with pytest.raises(TypeError) as excinfo:
        _call(func, x, out)
    assert type(excinfo.value) is TypeError
    check_message(excinfo, str(np.dtype(out_dtype)))
    assert_unchanged(out, before)


# --- relu_backward operand mismatches ----------------------------------------------

@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("other", ["float32", "float64", "int32", "uint8", "int64", "bool",
                                   "complex128"])
def test_backward_dtype_mismatch(dtype, other):
    """grad_output and x of different dtypes: TypeError, even where casting would be safe;
    nothing written (also with a valid out)."""
    if np.dtype(other) == np.dtype(dtype):
        return
    x = good(dtype, 8)
    g = good(other, 8) if other not in ("bool", "complex128") else np.ones(8, other)
    out = np.full(8, 5, dtype)
    for args in ((g, x), (x, g)):
        befores = [snapshot(a) for a in (*args, out)]
        for kwargs in ({}, {"out": out}):
            with pytest.raises(TypeError) as excinfo:
                fastrelu.relu_backward(*args, **kwargs)
            check_message(excinfo)
            assert str(np.dtype(other)) in str(excinfo.value)
        for a, b in zip((*args, out), befores):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("g_shape, x_shape", [
    ((3,), (1,)), ((1,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 3), (3, 2)),
    ((2, 3), (2, 1)), ((), (4,)), ((4,), ()), ((0,), (1,)), ((5,), (6,)), ((2, 3), (6,)),
])
def test_backward_shape_mismatch(dtype, g_shape, x_shape):
    """grad_output and x of different shapes: ValueError, no broadcasting, nothing written."""
    g = np.resize(good(dtype, 6), g_shape)
    x = np.resize(good(dtype, 6)[::-1], x_shape)
    out = np.full(x_shape, 5, dtype)
    befores = [snapshot(a) for a in (g, x, out)]
    for kwargs in ({}, {"out": out}):
        with pytest.raises(ValueError) as excinfo:
            fastrelu.relu_backward(g, x, **kwargs)
        check_message(excinfo, "shape")
    for a, b in zip((g, x, out), befores):
        assert_same(a, b)


def test_backward_lists_of_different_lengths():
    """Array-likes of different lengths: ValueError, not broadcast."""
    with pytest.raises(ValueError):
        fastrelu.relu_backward([1.0, 2.0, 3.0], [1.0])


# --- no leaked references ------------------------------------------------------------

def failing_calls():
    """(name, callable, objects whose refcount must not change)."""
    x = good("float64", 16)
    xs = x[::2]
    c = np.zeros(16, "c16")
    ro = good("float32", 16)
    ro.flags.writeable = False
    out_bad_shape = np.zeros(17)
    out_bad_dtype = np.zeros(16, "float32")
    out_ro = np.zeros(16)
    out_ro.flags.writeable = False
    g32 = good("float32", 16)
    lst = [1.0, -2.0]
    return [
        ("relu-complex", lambda: fastrelu.relu(c), [c]),
        ("relu_-complex", lambda: fastrelu.relu_(c), [c]),
        ("relu_grad-complex", lambda: fastrelu.relu_grad(c), [c]),
        ("relu_-readonly", lambda: fastrelu.relu_(ro), [ro]),
        ("relu_-list", lambda: fastrelu.relu_(lst), [lst]),
        ("relu-out-shape", lambda: fastrelu.relu(x, out=out_bad_shape), [x, out_bad_shape]),
        ("relu-strided-out-shape", lambda: fastrelu.relu(xs, out=out_bad_shape),
         [xs, out_bad_shape]),
        ("relu-out-dtype", lambda: fastrelu.relu(x, out=out_bad_dtype), [x, out_bad_dtype]),
        ("relu-out-readonly", lambda: fastrelu.relu(x, out=out_ro), [x, out_ro]),
        ("relu-out-list", lambda: fastrelu.relu(x, out=lst), [x, lst]),
        ("relu_grad-out-shape", lambda: fastrelu.relu_grad(x, out=out_bad_shape),
         [x, out_bad_shape]),
        ("relu_grad-out-readonly", lambda: fastrelu.relu_grad(x, out=out_ro), [x, out_ro]),
        ("backward-dtype", lambda: fastrelu.relu_backward(g32, x), [g32, x]),
        ("backward-shape", lambda: fastrelu.relu_backward(x, xs), [x, xs]),
        ("backward-out-shape", lambda: fastrelu.relu_backward(x, x, out=out_bad_shape),
         [x, out_bad_shape]),
        ("backward-out-dtype", lambda: fastrelu.relu_backward(x, x, out=out_bad_dtype),
         [x, out_bad_dtype]),
        ("backward-out-readonly", lambda: fastrelu.relu_backward(x, x, out=out_ro),
         [x, out_ro]),
        ("backward-complex", lambda: fastrelu.relu_backward(c, c), [c]),
    ]


@pytest.mark.parametrize("index", range(len(failing_calls())),
                         ids=[c[0] for c in failing_calls()])
def test_no_reference_leaks(index):
    """100 failing calls leave sys.getrefcount of every argument unchanged."""
    _, call, objects = failing_calls()[index]
    for _ in range(3):                       # warm up any caches
        try:
            call()
        except (TypeError, ValueError):
            pass
    before = [sys.getrefcount(o) for o in objects]
    for _ in range(100):
        try:
            call()
        except (TypeError, ValueError):
            pass
    after = [sys.getrefcount(o) for o in objects]
    assert after == before


def test_no_reference_leaks_on_success():
    """Successful calls (fast and general path) leak no references either."""
    x = good("float32", 64)
    xs = x[::2]
    out = np.empty_like(x)
    outs = np.empty_like(xs)
    objects = [x, xs, out, outs]
    calls = [lambda: fastrelu.relu(x, out=out), lambda: fastrelu.relu(xs, out=outs),
             lambda: fastrelu.relu_(out), lambda: fastrelu.relu_grad(x, out=out),
             lambda: fastrelu.relu_backward(x, x, out=out),
             lambda: fastrelu.relu_backward(xs, xs, out=outs), lambda: fastrelu.relu(x)]
    for call in calls:
        call()
    before = [sys.getrefcount(o) for o in objects]
    for _ in range(100):
        for call in calls:
            call()
    assert [sys.getrefcount(o) for o in objects] == before
