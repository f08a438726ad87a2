"""out overlapping the inputs (but not exactly the same elements) gives the result
of computing into a fresh array and then copying it in -- NumPy's
assert_copy_equivalent pattern -- for relu, relu_grad and relu_backward, with
the overlap on either input, shifted, strided, reversed, transposed and
misaligned by part of an element."""
import numpy as np
import pytest

import fastrelu
import oracle
from oracle import DTYPE_NAMES, assert_same, snapshot

SHIFTS = (1, 2, 3, 7, 8, 16, 63, 64, 65)
SIZES = (17, 130, 5000)


def check_copy_equivalent(buf, call, expected_of, out_view):
    """Run ``call()`` (which writes into ``out_view``, a view of ``buf``) and check that
    ``buf`` afterwards equals: a copy of buf with ``out_view``'s elements replaced by
    ``expected_of()`` (the oracle on copies of the inputs, taken before the call)."""
    expected_values = expected_of()
    expected_buf = snapshot(buf)
    # put the expected values where out_view lives, through the same view of the copy
    offset = out_view.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    view_of_copy = np.ndarray(out_view.shape, out_view.dtype, buffer=expected_buf,
                              offset=offset, strides=out_view.strides)
    view_of_copy[...] = expected_values
    result = call()
    assert result is out_view
    assert_same(buf, expected_buf)


def _unary(name):
    return getattr(fastrelu, name), getattr(oracle, name)


@pytest.mark.parametrize("func", ["relu", "relu_grad"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_unary_shifted_overlap(func, direction, dtype, values):
    """func(buf[:-k], out=buf[k:]) and func(buf[k:], out=buf[:-k])."""
    f, ref = _unary(func)
    for n in SIZES:
        for k in SHIFTS + (n // 2, n - 1):
            if k >= n:
                continue
            buf = values(dtype, n)
            x, out = (buf[:-k], buf[k:]) if direction == "forward" else (buf[k:], buf[:-k])
            check_copy_equivalent(buf, lambda: f(x, out=out), lambda: ref(x.copy()), out)


def _cube(buf):
    s = int(round(buf.size ** (1 / 3)))
    while s ** 3 > buf.size:
        s -= 1
    return buf[:s ** 3].reshape(s, s, s)


#: name -> function(buf, b2) returning (x, out): two same-shape views of one buffer
#: (b2 is buf as a square 2-D array; h is half of buf's length).
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


@pytest.mark.parametrize("func", ["relu", "relu_grad"])
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("case", STRIDED_CASES)
def test_unary_strided_overlap(func, dtype, case, values):
    """Strided, reversed and transposed overlaps between x and out."""
    f, ref = _unary(func)
    for side in (6, 41, 150):       # below the threading threshold; see the large test
        buf = values(dtype, side * side)
        x, out = STRIDED_CASES[case](buf, buf.reshape(side, side), buf.size // 2)
        assert x.shape == out.shape and np.may_share_memory(x, out)
        check_copy_equivalent(buf, lambda: f(x, out=out), lambda: ref(x.copy()), out)


@pytest.mark.parametrize("func", ["relu", "relu_grad", "relu_backward"])
@pytest.mark.parametrize("dtype", [d for d in DTYPE_NAMES if np.dtype(d).itemsize > 1])
def test_overlap_by_part_of_an_element(func, dtype, values):
    """x and out in one byte buffer, offset by less than an element (out unaligned)."""
    itemsize = np.dtype(dtype).itemsize
    for n in (1, 9, 100, 3000):
        for byte_shift in sorted({1, itemsize // 2, itemsize - 1, itemsize + 1}):
            raw = np.zeros((n + 2) * itemsize, dtype=np.uint8)
            x = raw[:n * itemsize].view(dtype)
            x[...] = values(dtype, n)
            out = raw[byte_shift:byte_shift + n * itemsize].view(dtype)
            for a, b in ((x, out), (out, x)):
                g = values(dtype, n)
                if func == "relu_backward":
                    call = (lambda a=a, b=b, g=g: fastrelu.relu_backward(g, a, out=b))
                    expected = (lambda a=a, g=g: oracle.relu_backward(g, a.copy()))
                else:
                    f, ref = _unary(func)
                    call = (lambda a=a, b=b: f(a, out=b))
                    expected = (lambda a=a: ref(a.copy()))
                check_copy_equivalent(raw, call, expected, b)


@pytest.mark.parametrize("operand", ["grad_output", "x", "both"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_backward_shifted_overlap(operand, direction, dtype, values):
    """relu_backward with out overlapping grad_output, x, or both, shifted either way."""
    for n in SIZES:
        for k in SHIFTS + (n // 3,):
            if 2 * k >= n:
                continue
            buf = values(dtype, n)
            m = n - 2 * k
            # three windows of buf: [0, m), [k, k + m), [2k, 2k + m)
            lo, mid, hi = buf[:m], buf[k:k + m], buf[2 * k:2 * k + m]
            out = hi if direction == "forward" else lo
            first = mid
            other = values(dtype, m)            # an independent operand
            if operand == "grad_output":
                g, x = first, other
            elif operand == "x":
                g, x = other, first
            else:
                g, x = (lo, mid) if direction == "forward" else (hi, mid)
            check_copy_equivalent(
                buf, lambda: fastrelu.relu_backward(g, x, out=out),
                lambda: oracle.relu_backward(g.copy(), x.copy()), out)


#: name -> function(buf, b2, h, y) returning (g, x, out); y is an independent array of
#: buf's size (y2 the same, square).
BACKWARD_STRIDED_CASES = {
    "g=buf[::-1] x=y out=buf": lambda buf, b2, h, y: (buf[::-1], y, buf),
    "g=y x=buf[::-1] out=buf": lambda buf, b2, h, y: (y, buf[::-1], buf),
    "g=buf[::2] x=buf[1::2] out=buf[:h]": lambda buf, b2, h, y: (buf[::2][:h],
                                                                buf[1::2][:h], buf[:h]),
    "g=buf[:h] x=buf[-h:] out=buf[::2]": lambda buf, b2, h, y: (buf[:h], buf[-h:],
                                                               buf[::2][:h]),
    "g=b2.T x=b2 out=b2": lambda buf, b2, h, y: (b2.T, b2, b2),
    "g=b2 x=b2.T out=b2.T": lambda buf, b2, h, y: (b2, b2.T, b2.T),
    "g=y2 x=b2.T out=b2": lambda buf, b2, h, y: (y.reshape(b2.shape), b2.T, b2),
    "g=b2[::-1] x=y2 out=b2[:, ::-1]": lambda buf, b2, h, y: (b2[::-1], y.reshape(b2.shape),
                                                             b2[:, ::-1]),
}


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("case", BACKWARD_STRIDED_CASES)
def test_backward_strided_overlap(dtype, case, values):
    """relu_backward with reversed, interleaved and transposed overlaps."""
    for side in (4, 33, 200):
        buf = values(dtype, side * side)
        y = values(dtype, buf.size)
        g, x, out = BACKWARD_STRIDED_CASES[case](buf, buf.reshape(side, side), buf.size // 2, y)
        assert g.shape == x.shape == out.shape
        check_copy_equivalent(buf, lambda: fastrelu.relu_backward(g, x, out=out),
                              lambda: oracle.relu_backward(g.copy(), x.copy()), out)


def _parallel_min_bytes():
    return fastrelu._engine.build_info().get("parallel_min_bytes", 1 << 20)


#: name -> function(buf, k) returning (x, out, g): overlapping views for large arrays
LARGE_CASES = {
    "x=buf[:-k] out=buf[k:]": lambda buf, k: (buf[:-k], buf[k:], buf[k // 2:buf.size - k + k // 2]),
    "x=buf[k:] out=buf[:-k]": lambda buf, k: (buf[k:], buf[:-k], buf[k // 2:buf.size - k + k // 2]),
    "x=buf[::2] out=buf[:h]": lambda buf, k: (buf[::2][:buf.size // 2], buf[:buf.size // 2],
                                              buf[1::2][:buf.size // 2]),
    "x=buf[-h:] out=buf[::-2]": lambda buf, k: (buf[-(buf.size // 2):],
                                                buf[::-2][:buf.size // 2],
                                                buf[::2][:buf.size // 2]),
    "x=buf[::-1] out=buf": lambda buf, k: (buf[::-1], buf, buf[::-1]),
}


@pytest.mark.parametrize("case", LARGE_CASES)
@pytest.mark.parametrize("func", ["relu", "relu_grad", "relu_backward"])
@pytest.mark.parametrize("dtype", ["float32", "int8", "float64"])
def test_large_overlap_threaded(func, dtype, case, big_values):
    """Overlaps on arrays of twice the threading threshold, with 2 threads (so the work
    is split): the result must still be that of a fresh out copied in -- including when
    out trails the input, the case NumPy does not copy because a sequential loop would
    be safe. A wrong result depends on thread timing, so each case runs 10 times."""
    itemsize = np.dtype(dtype).itemsize
    n = 2 * _parallel_min_bytes() // itemsize + 11
    with fastrelu.num_threads(2):
        for k in (1, 4096 // itemsize + 1):
            for _ in range(10):
                buf = big_values(dtype, n)
                x, out, g = LARGE_CASES[case](buf, k)
                if func == "relu_backward":
                    call = lambda: fastrelu.relu_backward(g, x, out=out)
                    expected = lambda: oracle.relu_backward(g.copy(), x.copy())
                else:
                    call = lambda: getattr(fastrelu, func)(x, out=out)
                    expected = lambda: getattr(oracle, func)(x.copy())
                check_copy_equivalent(buf, call, expected, out)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_relu_inplace_on_overlapping_views(dtype, values):
    """relu_ on a view sharing memory with another view changes the shared elements only
    as relu would (it is elementwise in place; nothing else is read or written)."""
    buf = values(dtype, 101)
    expected = snapshot(buf)
    expected[10:60] = oracle.relu(expected[10:60])
    fastrelu.relu_(buf[10:60])
    assert_same(buf, expected)
    expected[::3] = oracle.relu(expected[::3])
    fastrelu.relu_(buf[::3])
    assert_same(buf, expected)
