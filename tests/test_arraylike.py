"""Array-likes through every operation of the registry that takes their dtype:
lists, nested lists, Python and NumPy scalars, 0-d arrays, objects with
__array__, objects exposing only the buffer protocol, objects exposing only
__dlpack__, and read-only inputs. The result is always an ndarray with the
reference's bits; the input is never modified."""
import array
import ctypes

import numpy as np
import pytest

import fastrelu
from helpers import (ALL_DTYPE_NAMES, OPS, assert_same, call, call_inplace, expected,
                     layout_params, make_layout, native_dtype, op_id, param_sets,
                     relayout, snapshot)

pytestmark = pytest.mark.core


def ops_for(dtype):
    """The operations that take ``dtype``."""
    return [op for op in OPS if native_dtype(dtype).name in op.dtype_names]


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
    """Every op that takes ``as_array``'s dtype (what the object holds), with
    each generated parameter, on ``obj`` (as both operands of a backward, and
    as either one next to the ndarray) gives the reference's bits as an
    ndarray, also into an out."""
    for op in ops_for(as_array.dtype):
        for params in param_sets(op, native_dtype(as_array.dtype)):
            want = expected(op, (as_array,) * op.arity, params)
            assert_same(call(op, (obj,) * op.arity, params), want)
            out = np.empty(as_array.shape, native_dtype(as_array.dtype))
            assert call(op, (obj,) * op.arity, params, out=out) is out
            assert_same(out, want)
            if op.arity == 2:
                other = np.array(as_array, copy=True)
                assert_same(call(op, (obj, other), params), want)
                assert_same(call(op, (other, obj), params), want)


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
    check_all((-1.0, 3.0, 6.5, np.nan), np.array([-1.0, 3.0, 6.5, np.nan]))


@pytest.mark.parametrize("value", [-3, 0, 5, -2.5, -0.0, 0.0, 3.25, float("inf"),
                                   float("-inf"), float("nan"), 2 ** 62, -(2 ** 62)])
def test_python_scalars(value):
    """A Python int or float gives a 0-d ndarray (not a scalar) of int64 / float64."""
    a = np.asarray(value)
    for op in ops_for(a.dtype):
        for params in param_sets(op, a.dtype):
            r = call(op, (value,) * op.arity, params)
            assert type(r) is np.ndarray and r.ndim == 0
            assert_same(r, expected(op, (a,) * op.arity, params))


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
    for op in ops_for(a.dtype):
        (params,) = param_sets(op, a.dtype)[:1]
        r = call(op, (value,) * op.arity, params)
        assert type(r) is np.ndarray and r.shape == () and r.dtype == value.dtype
        assert_same(r, expected(op, (a,) * op.arity, params))


@pytest.mark.parametrize("dtype", ALL_DTYPE_NAMES)
def test_zero_dim_arrays(dtype):
    """0-d arrays: out of place, with out, in place (the in-place twin returns
    the same 0-d array)."""
    for v in (-1, 0, 1, 6, 100):
        x = np.array(v).astype(dtype)
        check_all(x, x)
        for op in [op for op in ops_for(dtype) if op.inplace]:
            for params in param_sets(op, dtype):
                y = x.copy()
                assert call_inplace(op, y, params) is y
                assert_same(y, expected(op, (x,), params))


@pytest.mark.parametrize("dtype, layout",
                         layout_params(names=["C", "step2", "F-2d", "byteswapped", "0-d"]))
def test_objects_with_array_method(dtype, layout, values):
    """Objects with only __array__ are converted; the underlying array is not modified."""
    a = make_layout(layout, values(dtype, 30))
    before = snapshot(a)
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
    assert a.dtype.name in ALL_DTYPE_NAMES, a.dtype
    snapshot = bytes(memoryview(obj).tobytes())
    check_all(obj, np.array(a, copy=True))
    assert memoryview(obj).tobytes() == snapshot


@pytest.mark.parametrize("dtype", ALL_DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["C", "step2", "F-2d", "readonly", "0-d", "empty",
                                    "reversed"])
def test_dlpack_only_objects(dtype, layout, values):
    """Objects with only __dlpack__/__dlpack_device__ are imported with np.from_dlpack;
    the exporter's data is not modified (read-only exporters included)."""
    a = make_layout(layout, values(dtype, 24))
    before = snapshot(a)
    obj = DLPackOnly(a)
    assert not hasattr(obj, "__array__")
    check_all(obj, a)
    assert_same(a, before)


@pytest.mark.parametrize("op", [op for op in OPS if op.inplace], ids=op_id)
def test_dlpack_only_inplace_refused(op):
    """The in-place twins work on ndarrays only: a DLPack-only object is a
    TypeError, and its data is not modified."""
    a = np.array([-1.0, 1.0])
    with pytest.raises(TypeError):
        call_inplace(op, DLPackOnly(a), param_sets(op, "float64")[0])
    assert a.tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("dtype", ALL_DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["readonly", "broadcast-row", "broadcast-scalar"])
def test_readonly_inputs_accepted(dtype, layout, values):
    """Every op accepts read-only inputs (with a fresh result and out=)."""
    a = make_layout(layout, values(dtype, 33))
    assert not a.flags.writeable
    check_all(a, a)
    g = relayout("readonly", values(dtype, a.size).reshape(a.shape))
    for op in ops_for(dtype):
        if op.arity == 2:
            (params,) = param_sets(op, dtype)[:1]
            assert_same(call(op, (g, a), params), expected(op, (g, a), params))


@pytest.mark.parametrize("op", [op for op in OPS if op.arity == 2], ids=op_id)
def test_mixed_array_likes_in_backward(op):
    """A backward with a list and an ndarray of the same resulting dtype."""
    x = np.array([-1.0, 2.0, 0.0, 3.0, 7.0])
    g = [10.0, 20.0, np.inf, np.nan, -1.0]
    for params in param_sets(op, "float64"):
        assert_same(call(op, (g, x), params), expected(op, (np.array(g), x), params))
        assert_same(call(op, (x, g), params), expected(op, (x, np.array(g)), params))


@pytest.mark.parametrize("op", [op for op in OPS if "int64" in op.dtype_names], ids=op_id)
def test_list_result_is_ndarray_with_out(op):
    """An integer list with an ndarray out (int64) writes into out and returns it."""
    values = [-1, 0, 4, 6, 9]
    for params in param_sets(op, "int64"):
        out = np.full(5, 99, dtype=np.int64)
        assert call(op, (values,) * op.arity, params, out=out) is out
        assert_same(out, expected(op, (np.array(values),) * op.arity, params))


def test_dlpack_producer_of_an_unsupported_dtype_is_a_type_error():
    """A ``__dlpack__``-only object whose dtype NumPy cannot represent
    (bfloat16) gets the documented TypeError, naming the argument, for every
    operation; a supported one converts without a copy."""
    torch = pytest.importorskip("torch")

    class DLPackOnly:
        def __init__(self, tensor):
            self.tensor = tensor

        def __dlpack__(self, **kwargs):
            return self.tensor.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.tensor.__dlpack_device__()

    bad = DLPackOnly(torch.ones(4, dtype=torch.bfloat16))
    for op in OPS:
        params = [{"slope": 0.1, "bound": 0.5, "value": 0.0}[p.kind] for p in op.params]
        for position in range(op.arity):
            arrays = [np.ones(4, np.float32)] * op.arity
            arrays[position] = bad
            with pytest.raises(TypeError, match=op.inputs[position]):
                getattr(fastrelu, op.name)(*arrays, *params)
    good = torch.tensor([-1.0, 2.0])
    np.testing.assert_array_equal(fastrelu.relu(DLPackOnly(good)), [0.0, 2.0])
