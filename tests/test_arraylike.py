"""Array-likes: lists, nested lists, Python and NumPy scalars, 0-d arrays, objects
with __array__, objects exposing only the buffer protocol, objects exposing only
__dlpack__, and read-only inputs. The result is always an ndarray with the
oracle's bits; the input is never modified."""
import array
import ctypes

import numpy as np
import pytest

import fastrelu
import oracle
from oracle import assert_same


class ArrayOnly:
    """Exposes only ``__array__`` (NumPy 2 signature)."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


class DLPackOnly:
    """Exposes only ``__dlpack__`` and ``__dlpack_device__`` (no __array__, no buffer)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def check_all(obj, as_array):
    """relu, relu_grad and relu_backward(obj, obj) of an array-like equal the oracle on
    ``as_array`` (what the object holds), and return ndarrays."""
    expected_relu = oracle.relu(as_array)
    assert_same(fastrelu.relu(obj), expected_relu)
    assert_same(fastrelu.relu_grad(obj), oracle.relu_grad(as_array))
    assert_same(fastrelu.relu_backward(obj, obj), oracle.relu_backward(as_array, as_array))
    out = np.empty(as_array.shape, oracle.native_dtype(as_array.dtype))
    assert fastrelu.relu(obj, out=out) is out
    assert_same(out, expected_relu)


@pytest.mark.parametrize("value, dtype", [
    ([-1.5, 2.0, -0.0, 0.0, np.inf, -np.inf, np.nan], "float64"),
    ([-1, 2, 0, -7], "int64"),
    ([[1, -2, 3], [-4, 5, -6]], "int64"),
    ([[[0.5, -0.5]], [[-1.0, 1.0]], [[np.nan, -np.nan]]], "float64"),
    ([1, -2.5], "float64"),
    ([], "float64"),
    ([[], []], "float64"),
    ([2 ** 63], "uint64"),
    ([-(2 ** 63), 2 ** 63 - 1], "int64"),
])
def test_lists(value, dtype):
    """Lists and nested lists become ndarrays of NumPy's inferred dtype; the list is
    not modified."""
    copy = [v for v in value]
    a = np.asarray(value)
    assert a.dtype == dtype
    check_all(value, a)
    assert value == copy or (np.asarray(value, dtype=float).tobytes()
                             == np.asarray(copy, dtype=float).tobytes())


def test_tuple_input():
    """Tuples work like lists."""
    assert_same(fastrelu.relu((-1.0, 3.0)), np.array([0.0, 3.0]))


@pytest.mark.parametrize("value", [-3, 0, 5, -2.5, -0.0, 0.0, 3.25, float("inf"),
                                   float("-inf"), float("nan"), 2 ** 62, -(2 ** 62)])
def test_python_scalars(value):
    """A Python int or float gives a 0-d ndarray (not a scalar) of int64 / float64."""
    a = np.asarray(value)
    for func, ref in ((fastrelu.relu, oracle.relu), (fastrelu.relu_grad, oracle.relu_grad)):
        r = func(value)
        assert type(r) is np.ndarray and r.ndim == 0
        assert_same(r, ref(a))
    r = fastrelu.relu_backward(value, value)
    assert type(r) is np.ndarray and r.shape == ()
    assert_same(r, oracle.relu_backward(a, a))


def test_negative_zero_scalar_gives_positive_zero():
    """relu(-0.0) is +0.0 (signbit False), as a 0-d array."""
    r = fastrelu.relu(-0.0)
    assert r.shape == () and not np.signbit(r) and r == 0


@pytest.mark.parametrize("value", [np.float16(-1), np.float32(2.5), np.float64(-0.0),
                                   np.int8(-128), np.uint64(2 ** 64 - 1), np.int32(7),
                                   np.float32("nan")], ids=repr)
def test_numpy_scalars(value):
    """NumPy scalars give 0-d ndarrays of their own dtype."""
    a = np.asarray(value)
    r = fastrelu.relu(value)
    assert type(r) is np.ndarray and r.shape == () and r.dtype == value.dtype
    assert_same(r, oracle.relu(a))
    assert_same(fastrelu.relu_grad(value), oracle.relu_grad(a))
    assert_same(fastrelu.relu_backward(value, value), oracle.relu_backward(a, a))


@pytest.mark.parametrize("dtype", oracle.DTYPE_NAMES)
def test_zero_dim_arrays(dtype):
    """0-d arrays: out of place, with out, in place (relu_ returns the same 0-d array)."""
    for v in (-1, 0, 1, 100):
        x = np.array(v).astype(dtype)
        assert_same(fastrelu.relu(x), oracle.relu(x))
        out = np.empty((), dtype)
        assert fastrelu.relu(x, out=out) is out
        assert_same(out, oracle.relu(x))
        y = x.copy()
        assert fastrelu.relu_(y) is y
        assert_same(y, oracle.relu(x))
        assert_same(fastrelu.relu_grad(x), oracle.relu_grad(x))
        assert_same(fastrelu.relu_backward(x, x), oracle.relu_backward(x, x))


@pytest.mark.parametrize("dtype", oracle.DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["C", "step2", "F-2d", "byteswapped", "0-d"])
def test_objects_with_array_method(dtype, layout, values):
    """Objects with only __array__ are converted; the underlying array is not modified."""
    if not oracle.layout_applies(layout, dtype):
        return
    a = oracle.make_layout(layout, values(dtype, 30))
    before = oracle.snapshot(a)
    check_all(ArrayOnly(a), a)
    assert_same(a, before)


@pytest.mark.parametrize("typecode, dtype", [
    ("b", "int8"), ("B", "uint8"), ("h", "int16"), ("H", "uint16"), ("i", "int32"),
    ("I", "uint32"), ("q", "int64"), ("Q", "uint64"), ("f", "float32"), ("d", "float64"),
])
def test_array_array(typecode, dtype):
    """array.array (buffer protocol only) of every supported typecode; unmodified."""
    values = [-3, -1, 0, 1, 2, 100] if typecode.islower() else [0, 1, 2, 100, 255]
    src = array.array(typecode, values * 7)
    snapshot = src.tobytes()
    a = np.frombuffer(src, dtype=dtype)
    check_all(src, a.copy())
    assert src.tobytes() == snapshot


def test_array_array_float_specials():
    """array.array('f') with NaN payloads, -0.0 and -inf, through the buffer protocol."""
    bits = np.array([0x7FC00123, 0xFFC00123, 0x80000000, 0xFF800000, 1, 0x80000001],
                    dtype=np.uint32)
    src = array.array("f", bits.view(np.float32).tobytes())
    check_all(src, np.frombuffer(src, np.float32).copy())


@pytest.mark.parametrize("make", [
    lambda raw: memoryview(raw),
    lambda raw: memoryview(bytes(raw)),                 # read-only buffer
    lambda raw: bytearray(raw),
    lambda raw: memoryview(bytearray(raw)).cast("b"),
    lambda raw: memoryview(bytearray(raw)).cast("h"),
    lambda raw: memoryview(bytearray(raw)).cast("f"),
    lambda raw: memoryview(bytearray(raw)).cast("d"),
    lambda raw: memoryview(bytearray(raw)).cast("Q"),
    lambda raw: memoryview(bytearray(raw)).cast("b", (4, 8)),
    lambda raw: memoryview(bytearray(raw))[::2],        # strided memoryview
    lambda raw: (ctypes.c_int32 * 8).from_buffer(bytearray(raw)),
    lambda raw: (ctypes.c_double * 4).from_buffer(bytearray(raw)),
], ids=["memoryview", "memoryview-readonly", "bytearray", "cast-b", "cast-h", "cast-f",
        "cast-d", "cast-Q", "cast-b-2d", "memoryview-strided", "ctypes-int32",
        "ctypes-double"])
def test_buffer_protocol_objects(make, rng):
    """Objects exposing only the buffer protocol (memoryview, bytearray, ctypes arrays)."""
    raw = rng.integers(0, 256, size=32, dtype=np.uint8).tobytes()
    obj = make(raw)
    a = np.asarray(obj)
    assert a.dtype in oracle.ALL_DTYPES, a.dtype
    snapshot = bytes(memoryview(obj).tobytes())
    check_all(obj, np.array(a, copy=True))
    assert memoryview(obj).tobytes() == snapshot


@pytest.mark.parametrize("dtype", oracle.DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["C", "step2", "F-2d", "readonly", "0-d", "empty",
                                    "reversed"])
def test_dlpack_only_objects(dtype, layout, values):
    """Objects with only __dlpack__/__dlpack_device__ are imported with np.from_dlpack;
    the exporter's data is not modified (read-only exporters included)."""
    a = oracle.make_layout(layout, values(dtype, 24))
    before = oracle.snapshot(a)
    obj = DLPackOnly(a)
    assert not hasattr(obj, "__array__")
    check_all(obj, a)
    assert_same(a, before)


def test_dlpack_only_relu_inplace_refused():
    """relu_ works in place on ndarrays only: a DLPack-only object is a TypeError."""
    with pytest.raises(TypeError):
        fastrelu.relu_(DLPackOnly(np.array([-1.0, 1.0])))


@pytest.mark.parametrize("dtype", oracle.DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["readonly", "broadcast-row", "broadcast-scalar"])
def test_readonly_inputs_accepted(dtype, layout, values):
    """relu, relu_grad and relu_backward accept read-only inputs (and out= as well)."""
    a = oracle.make_layout(layout, values(dtype, 33))
    assert not a.flags.writeable
    check_all(a, a)
    g = oracle.relayout("readonly", values(dtype, a.size).reshape(a.shape))
    assert_same(fastrelu.relu_backward(g, a), oracle.relu_backward(g, a))


def test_mixed_array_likes_in_backward():
    """relu_backward with a list and an ndarray of the same resulting dtype."""
    x = np.array([-1.0, 2.0, 0.0, 3.0])
    g = [10.0, 20.0, np.inf, np.nan]
    assert_same(fastrelu.relu_backward(g, x), oracle.relu_backward(np.array(g), x))
    assert_same(fastrelu.relu_backward(x, g), oracle.relu_backward(x, np.array(g)))


def test_list_result_is_ndarray_with_out():
    """A list input with an ndarray out writes into out and returns it."""
    out = np.full(3, 9, dtype=np.int64)
    assert fastrelu.relu([-1, 0, 4], out=out) is out
    assert out.tolist() == [0, 0, 4]
