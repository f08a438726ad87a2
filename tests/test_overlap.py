"""``out`` overlapping the inputs (but not exactly the same elements) gives the
result of computing into a fresh array and then copying it in -- NumPy's
assert_copy_equivalent pattern -- for every operation of the registry, with
the overlap on either input of a backward, shifted, strided, reversed,
transposed, misaligned by part of an element, and split between threads."""
import numpy as np
import pytest

from helpers import (ALL_DTYPE_NAMES, BINARY_OPS, INPLACE_OPS, UNARY_OPS, assert_same, call,
                     call_inplace, expected, op_dtype_params, op_id, param_cycle, param_sets,
                     snapshot, threaded_size)

pytestmark = pytest.mark.core

SHIFTS = (1, 2, 3, 7, 8, 16, 63, 64, 65)
SIZES = (17, 130, 5000)


def check_copy_equivalent(buf, op, operands, params, out):
    """Run ``op`` on ``operands`` into ``out`` (views of ``buf``) and check that
    ``buf`` afterwards equals a copy of buf with ``out``'s elements replaced by
    the reference on copies of the operands taken before the call."""
    want = expected(op, tuple(a.copy() for a in operands), params)
    expected_buf = snapshot(buf)
    # put the expected values where out lives, through the same view of the copy
    offset = out.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    view_of_copy = np.ndarray(out.shape, out.dtype, buffer=expected_buf, offset=offset,
                              strides=out.strides)
    view_of_copy[...] = want
    assert call(op, operands, params, out=out) is out
    assert_same(buf, expected_buf)


@pytest.mark.parametrize("op, dtype", op_dtype_params(UNARY_OPS), ids=op_id)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_unary_shifted_overlap(op, dtype, direction, values):
    """op(buf[:-k], out=buf[k:]) and op(buf[k:], out=buf[:-k])."""
    for n in SIZES:
        shifts = [k for k in SHIFTS + (n // 2, n - 1) if k < n]
        for k, params in zip(shifts, param_cycle(op, dtype, len(shifts))):
            buf = values(dtype, n)
            x, out = (buf[:-k], buf[k:]) if direction == "forward" else (buf[k:], buf[:-k])
            check_copy_equivalent(buf, op, (x,), params, out)


def _cube(buf):
    s = int(round(buf.size ** (1 / 3)))
    while s ** 3 > buf.size:
        s -= 1
    return buf[:s ** 3].reshape(s, s, s)


#: name -> function(buf, b2, h) returning (x, out): two same-shape views of one
#: buffer (b2 is buf as a square 2-D array; h is half of buf's length).
STRIDED_CASES = {
    "x=buf[::-1] out=buf": lambda buf, b2, h: (buf[::-1], buf),
    "x=buf out=buf[::-1]": lambda buf, b2, h: (buf, buf[::-1]),
    "x=buf[::2] out=buf[1::2]": lambda buf, b2, h: (buf[::2][:h], buf[1::2][:h]),
    "x=buf[1::2] out=buf[::2]": lambda buf, b2, h: (buf[1::2][:h], buf[::2][:h]),
    "x=buf[::2] out=buf[:h]": lambda buf, b2, h: (buf[::2][:h], buf[:h]),
    "x=buf[:h] out=buf[::2]": lambda buf, b2, h: (buf[:h], buf[::2][:h]),
    "x=buf[-h:] out=buf[::2]": lambda buf, b2, h: (buf[-h:], buf[::2][:h]),
    "x=buf[::-2] out=buf[-h:]": lambda buf, b2, h: (buf[::-2][:h], buf[-h:]),
    "x=b2.T out=b2": lambda buf, b2, h: (b2.T, b2),
    "x=b2 out=b2.T": lambda buf, b2, h: (b2, b2.T),
    "x=b2[::-1] out=b2": lambda buf, b2, h: (b2[::-1], b2),
    "x=b2[:, ::-1] out=b2": lambda buf, b2, h: (b2[:, ::-1], b2),
    "x=b2[:-1, :-1] out=b2[1:, 1:]": lambda buf, b2, h: (b2[:-1, :-1], b2[1:, 1:]),
    "x=b2[1:, 1:] out=b2[:-1, :-1]": lambda buf, b2, h: (b2[1:, 1:], b2[:-1, :-1]),
    "x=cube.transpose(2, 0, 1) out=cube": lambda buf, b2, h: (_cube(buf).transpose(2, 0, 1),
                                                              _cube(buf)),
}


@pytest.mark.parametrize("op, dtype", op_dtype_params(UNARY_OPS), ids=op_id)
def test_unary_strided_overlap(op, dtype, values):
    """Strided, reversed and transposed overlaps between x and out (below the
    threading threshold; see test_threaded_overlap)."""
    for case, make in STRIDED_CASES.items():
        for side, params in zip((6, 41, 150), param_cycle(op, dtype, 3)):
            buf = values(dtype, side * side)
            x, out = make(buf, buf.reshape(side, side), buf.size // 2)
            assert x.shape == out.shape and np.may_share_memory(x, out), case
            check_copy_equivalent(buf, op, (x,), params, out)


@pytest.mark.parametrize("op, dtype", op_dtype_params(
    dtypes=[dt for dt in ALL_DTYPE_NAMES if np.dtype(dt).itemsize > 1]), ids=op_id)
def test_overlap_by_part_of_an_element(op, dtype, values):
    """x (or grad_output) and out in one byte buffer, offset by less than an
    element (out unaligned), either way round."""
    itemsize = np.dtype(dtype).itemsize
    for n, params in zip((1, 9, 100, 3000), param_cycle(op, dtype, 4)):
        for byte_shift in sorted({1, itemsize // 2, itemsize - 1, itemsize + 1}):
            raw = np.zeros((n + 2) * itemsize, dtype=np.uint8)
            a = raw[:n * itemsize].view(dtype)
            a[...] = values(dtype, n)
            b = raw[byte_shift:byte_shift + n * itemsize].view(dtype)
            for src, out in ((a, b), (b, a)):
                operands = (values(dtype, n), src)[-op.arity:]
                check_copy_equivalent(raw, op, operands, params, out)
                if op.arity == 2:
                    check_copy_equivalent(raw, op, (src, values(dtype, n)), params, out)


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS), ids=op_id)
@pytest.mark.parametrize("operand", ["grad_output", "x", "both"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_backward_shifted_overlap(op, dtype, operand, direction, values):
    """A backward with out overlapping grad_output, x, or both, shifted either way."""
    for n in SIZES:
        shifts = [k for k in SHIFTS + (n // 3,) if 2 * k < n]
        for k, params in zip(shifts, param_cycle(op, dtype, len(shifts))):
            buf = values(dtype, n)
            m = n - 2 * k
            # three windows of buf: [0, m), [k, k + m), [2k, 2k + m)
            lo, mid, hi = buf[:m], buf[k:k + m], buf[2 * k:2 * k + m]
            out = hi if direction == "forward" else lo
            other = values(dtype, m)            # an independent operand
            if operand == "grad_output":
                g, x = mid, other
            elif operand == "x":
                g, x = other, mid
            else:
                g, x = (lo, mid) if direction == "forward" else (hi, mid)
            check_copy_equivalent(buf, op, (g, x), params, out)


#: name -> function(buf, b2, h, y) returning (g, x, out); y is an independent
#: array of buf's size.
BACKWARD_STRIDED_CASES = {
    "g=buf[::-1] x=y out=buf": lambda buf, b2, h, y: (buf[::-1], y, buf),
    "g=y x=buf[::-1] out=buf": lambda buf, b2, h, y: (y, buf[::-1], buf),
    "g=buf[::2] x=buf[1::2] out=buf[:h]":
        lambda buf, b2, h, y: (buf[::2][:h], buf[1::2][:h], buf[:h]),
    "g=buf[:h] x=buf[-h:] out=buf[::2]":
        lambda buf, b2, h, y: (buf[:h], buf[-h:], buf[::2][:h]),
    "g=b2.T x=b2 out=b2": lambda buf, b2, h, y: (b2.T, b2, b2),
    "g=b2 x=b2.T out=b2.T": lambda buf, b2, h, y: (b2, b2.T, b2.T),
    "g=y2 x=b2.T out=b2": lambda buf, b2, h, y: (y.reshape(b2.shape), b2.T, b2),
    "g=b2[::-1] x=y2 out=b2[:, ::-1]":
        lambda buf, b2, h, y: (b2[::-1], y.reshape(b2.shape), b2[:, ::-1]),
}


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS), ids=op_id)
def test_backward_strided_overlap(op, dtype, values):
    """A backward with reversed, interleaved and transposed overlaps."""
    for case, make in BACKWARD_STRIDED_CASES.items():
        for side, params in zip((4, 33, 200), param_cycle(op, dtype, 3)):
            buf = values(dtype, side * side)
            y = values(dtype, buf.size)
            g, x, out = make(buf, buf.reshape(side, side), buf.size // 2, y)
            assert g.shape == x.shape == out.shape, case
            check_copy_equivalent(buf, op, (g, x), params, out)


#: name -> function(buf, k) returning (x, out, g): overlapping views for large arrays
LARGE_CASES = {
    "x=buf[:-k] out=buf[k:]": lambda buf, k: (buf[:-k], buf[k:],
                                              buf[k // 2:buf.size - k + k // 2]),
    "x=buf[k:] out=buf[:-k]": lambda buf, k: (buf[k:], buf[:-k],
                                              buf[k // 2:buf.size - k + k // 2]),
    "x=buf[::2] out=buf[:h]": lambda buf, k: (buf[::2][:buf.size // 2], buf[:buf.size // 2],
                                              buf[1::2][:buf.size // 2]),
    "x=buf[-h:] out=buf[::-2]": lambda buf, k: (buf[-(buf.size // 2):],
                                                buf[::-2][:buf.size // 2],
                                                buf[::2][:buf.size // 2]),
    "x=buf[::-1] out=buf": lambda buf, k: (buf[::-1], buf, buf[::-1]),
}


@pytest.mark.usefixtures("threaded")
@pytest.mark.parametrize("op, dtype", op_dtype_params(dtypes=("float32", "int8", "float64")),
                         ids=op_id)
def test_threaded_overlap(op, dtype, big_values):
    """Overlaps on arrays of several thread chunks, with the thresholds at 0 and
    2 threads (so the work would be split): the result must still be that of a
    fresh out copied in -- including when out trails the input, the case NumPy
    does not copy because a sequential loop would be safe. A wrong result
    depends on thread timing, so each case runs 5 times."""
    itemsize = np.dtype(dtype).itemsize
    n = threaded_size(dtype, chunks=4)
    for case, make in LARGE_CASES.items():
        for k, params in zip((1, 4096 // itemsize + 1), param_cycle(op, dtype, 2)):
            for _ in range(5):
                buf = big_values(dtype, n)
                x, out, g = make(buf, k)
                check_copy_equivalent(buf, op, (g, x)[-op.arity:], params, out)


@pytest.mark.parametrize("op, dtype", op_dtype_params(INPLACE_OPS), ids=op_id)
def test_inplace_on_overlapping_views(op, dtype, values):
    """The in-place twin on a view sharing memory with another view changes
    the shared elements only as the op would (it is elementwise in place;
    nothing else is read or written)."""
    for params in param_sets(op, dtype):
        buf = values(dtype, 101)
        want = snapshot(buf)
        want[10:60] = expected(op, (want[10:60],), params)
        call_inplace(op, buf[10:60], params)
        assert_same(buf, want)
        want[::3] = expected(op, (want[::3],), params)
        call_inplace(op, buf[::3], params)
        assert_same(buf, want)
