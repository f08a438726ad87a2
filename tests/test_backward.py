"""relu_grad and relu_backward against the oracle, bit for bit: every dtype, sizes
0..70 and large ones, every layout of x, several layouts of grad_output, out=
(fresh, strided, byte-swapped, unaligned, aliasing grad_output or x), inf/NaN
gradients masked to exactly +0, and x given as the relu output."""
import numpy as np
import pytest

import fastrelu
import oracle
from oracle import (DTYPE_NAMES, OUT_KINDS, READONLY_LAYOUTS, RELAYOUT_KINDS,
                    assert_same, layout_params, make_layout, make_out, relayout, snapshot)

FLOAT_NAMES = ("float16", "float32", "float64")
SMALL_SIZES = (*range(71), 127, 128, 129, 255, 256, 257)
#: Sizes at the edges of 16-, 32- and 64-byte vectors (for the secondary combinations).
EDGE_SIZES = (0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70, 129, 257)
LARGE_SIZES = (1000, 4097, 100_003)


# --- relu_grad -------------------------------------------------------------------

GRAD_MODES = ("grad", "out", "out=x")


def run_grad(mode, x, out_kind="fresh"):
    """relu_grad in ``mode``: result checked against the oracle; x unchanged unless aliased."""
    expected = oracle.relu_grad(x)
    before = snapshot(x)
    if mode == "grad":
        result = fastrelu.relu_grad(x)
        assert result.dtype.isnative
        assert_same(result, expected)
        assert not np.shares_memory(result, x)
        assert_same(x, before)
    elif mode == "out":
        out, untouched = make_out(out_kind, x.shape, x.dtype, 99)
        assert fastrelu.relu_grad(x, out=out) is out
        assert_same(oracle.to_native(out), expected)
        untouched()
        assert_same(x, before)
    elif mode == "out=x":
        assert fastrelu.relu_grad(x, out=x) is x
        assert_same(oracle.to_native(x), expected)
    else:
        raise ValueError(mode)


def grad_params():
    return [(mode, dt, name) for mode in GRAD_MODES for dt, name in layout_params()
            if mode != "out=x" or name not in READONLY_LAYOUTS]


@pytest.mark.parametrize("mode, dtype, layout", grad_params())
def test_grad_small_sizes(mode, dtype, layout, values):
    """relu_grad for every size 0..70, dtype, layout and out mode."""
    for n in SMALL_SIZES:
        run_grad(mode, make_layout(layout, values(dtype, n)))


@pytest.mark.parametrize("mode, dtype, layout", grad_params())
def test_grad_large_sizes(mode, dtype, layout, values):
    """relu_grad at 1000, 4097 and (out-of-place) 100_003 elements."""
    for n in LARGE_SIZES if mode == "grad" else LARGE_SIZES[:2]:
        run_grad(mode, make_layout(layout, values(dtype, n)))


@pytest.mark.parametrize("out_kind", OUT_KINDS)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_grad_out_kinds(dtype, out_kind, values):
    """relu_grad into every kind of out, for contiguous and strided x."""
    for layout in ("C", "step2", "F-2d", "byteswapped"):
        if oracle.layout_applies(layout, dtype):
            for n in (0, 1, 9, 70, 5000):
                run_grad("out", make_layout(layout, values(dtype, n)), out_kind)


HUGE_DTYPES = ("float16", "float32", "float64", "int8", "int64", "uint32")


@pytest.mark.parametrize("dtype", HUGE_DTYPES)
def test_grad_huge(dtype, big_values):
    """relu_grad on 2_000_000 elements (threaded), contiguous and strided."""
    x = big_values(dtype, 2_000_000)
    run_grad("grad", x)
    run_grad("out=x", x.copy())
    run_grad("grad", x[::2])
    run_grad("out", x[::-1], "strided")


@pytest.mark.parametrize("dtype", FLOAT_NAMES)
def test_grad_values_are_exactly_one_or_zero(dtype):
    """The gradient is exactly +1 or +0 (no -0.0), 0 at +-0, NaN and -inf, 1 at +inf."""
    x = np.array([np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 2.0, -2.0], dtype=dtype)
    g = fastrelu.relu_grad(x)
    assert_same(g, np.array([1, 0, 0, 0, 0, 0, 1, 0], dtype=dtype))
    assert not np.signbit(g).any()


# --- relu_backward ------------------------------------------------------------------

BACKWARD_MODES = ("backward", "out", "out=g", "out=x")


def run_backward(mode, g, x, out_kind="fresh"):
    """relu_backward in ``mode``; result against the oracle; inputs unchanged unless aliased."""
    expected = oracle.relu_backward(g, x)
    g_before, x_before = snapshot(g), snapshot(x)
    if mode == "backward":
        result = fastrelu.relu_backward(g, x)
        assert result.dtype.isnative
        assert_same(result, expected)
        assert not np.shares_memory(result, x) and not np.shares_memory(result, g)
    elif mode == "out":
        out, untouched = make_out(out_kind, x.shape, x.dtype, 99)
        assert fastrelu.relu_backward(g, x, out=out) is out
        assert_same(oracle.to_native(out), expected)
        untouched()
    elif mode == "out=g":
        assert fastrelu.relu_backward(g, x, out=g) is g
        assert_same(oracle.to_native(g), expected)
        g_before = g
    elif mode == "out=x":
        assert fastrelu.relu_backward(g, x, out=x) is x
        assert_same(oracle.to_native(x), expected)
        x_before = x
    else:
        raise ValueError(mode)
    assert_same(g, g_before)
    assert_same(x, x_before)


def backward_params():
    params = []
    for mode in BACKWARD_MODES:
        for dt, name in layout_params():
            if mode in ("out=x", "out=g") and name in READONLY_LAYOUTS:
                continue
            params.append((mode, dt, name))
    return params


def gradient_like(values, x, kind):
    """A grad_output of x's shape and dtype in layout ``kind`` (random, with specials)."""
    g = values(x.dtype, x.size).reshape(x.shape)
    return relayout(kind, g)


@pytest.mark.parametrize("mode, dtype, layout", backward_params())
def test_backward_small_sizes(mode, dtype, layout, values):
    """relu_backward, sizes 0..70 and the 128/256 edges: every layout of x, grad_output
    C-contiguous, every out mode."""
    for n in SMALL_SIZES:
        x = make_layout(layout, values(dtype, n))
        run_backward(mode, gradient_like(values, x, "C"), x)


@pytest.mark.parametrize("dtype, layout", layout_params())
def test_backward_grad_layouts(dtype, layout, values):
    """Every layout of x with grad_output strided, reversed, byte-swapped or unaligned."""
    for g_kind in ("strided", "reversed", "byteswapped", "unaligned"):
        for n in EDGE_SIZES:
            x = make_layout(layout, values(dtype, n))
            run_backward("backward", gradient_like(values, x, g_kind), x)


@pytest.mark.parametrize("mode, dtype, layout", backward_params())
def test_backward_same_layout(mode, dtype, layout, values):
    """grad_output in the same layout as x (both from the layout generator), at the
    vector edges and large sizes."""
    sizes = (0, 1, 17, 65, 4097) + ((100_003,) if mode == "backward" else ())
    for n in sizes:
        run_backward(mode, make_layout(layout, values(dtype, n)),
                     make_layout(layout, values(dtype, n)))


@pytest.mark.parametrize("g_kind", RELAYOUT_KINDS)
@pytest.mark.parametrize("x_kind", RELAYOUT_KINDS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int64",
                                   "uint32"])
def test_backward_layout_pairs(dtype, x_kind, g_kind, values):
    """Every pair of (x, grad_output) layouts, 2-D, with a fresh out and out aliased."""
    for shape in [(0, 3), (1, 1), (5, 7), (33, 3), (40, 129)]:
        x = relayout(x_kind, values(dtype, int(np.prod(shape))).reshape(shape))
        g = relayout(g_kind, values(dtype, int(np.prod(shape))).reshape(shape))
        run_backward("backward", g, x)
        run_backward("out", g, x, "fresh-F")
        if g_kind != "readonly":
            run_backward("out=g", relayout(g_kind, g), x)
        if x_kind != "readonly":
            run_backward("out=x", g, relayout(x_kind, x))


@pytest.mark.parametrize("out_kind", OUT_KINDS)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_backward_out_kinds(dtype, out_kind, values):
    """relu_backward into every kind of out."""
    for layout in ("C", "step2", "F-2d", "byteswapped", "broadcast-row"):
        if oracle.layout_applies(layout, dtype):
            for n in (0, 1, 9, 70, 5000):
                x = make_layout(layout, values(dtype, n))
                run_backward("out", gradient_like(values, x, "C"), x, out_kind)


@pytest.mark.parametrize("dtype", HUGE_DTYPES)
def test_backward_huge(dtype, big_values):
    """relu_backward on 2_000_000 elements (threaded), contiguous and strided."""
    x = big_values(dtype, 2_000_000)
    g = big_values(dtype, 2_000_000)[::-1].copy()
    run_backward("backward", g, x)
    run_backward("out=g", g.copy(), x)
    run_backward("backward", g[::2], x[1::2])
    run_backward("out", g[::2], x[::-2], "strided")


@pytest.mark.parametrize("dtype", FLOAT_NAMES)
@pytest.mark.parametrize("n", [1, 7, 16, 64, 100, 5000])
def test_backward_masks_inf_and_nan_gradients(dtype, n):
    """Masked lanes are exactly +0 even where grad_output is +-inf or NaN (a selection,
    not a product); unmasked lanes pass inf/NaN through bit-exactly."""
    specials = np.array([np.inf, -np.inf, np.nan, -np.nan], dtype=dtype)
    payload = oracle.from_bits([{2: 0x7e01, 4: 0x7fc00123, 8: 0x7ff8000000000123}
                                [np.dtype(dtype).itemsize]], dtype)
    g = np.resize(np.concatenate([specials, payload]), n)
    masked_x = np.resize(np.array([0.0, -0.0, -1.0, -np.inf, np.nan, -np.nan], dtype=dtype), n)
    result = fastrelu.relu_backward(g, masked_x)
    assert_same(result, np.zeros(n, dtype=dtype))
    assert not np.signbit(result).any()
    # where x > 0 the gradient passes unchanged, NaN payloads included
    positive_x = np.resize(np.array([1.0, np.inf, 1e-3], dtype=dtype), n)
    assert_same(fastrelu.relu_backward(g, positive_x), g)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "F-2d"])
def test_backward_with_relu_output(dtype, layout, values):
    """x may be the relu output instead of its input: same mask, same result, also
    after an in-place forward with relu_."""
    if not oracle.layout_applies(layout, dtype):
        return
    for n in (0, 5, 64, 257, 10_000):
        x0 = make_layout(layout, values(dtype, n))
        g = gradient_like(values, x0, "C")
        expected = oracle.relu_backward(g, x0)
        y = fastrelu.relu(x0)
        assert_same(fastrelu.relu_backward(g, y), expected)
        assert_same(fastrelu.relu_grad(y), oracle.relu_grad(x0))
        x_inplace = relayout("C", x0)
        fastrelu.relu_(x_inplace)
        assert_same(fastrelu.relu_backward(g, x_inplace), expected)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_backward_out_is_both_inputs(dtype, values):
    """grad_output, x and out all the same array: g where g > 0, i.e. relu(g)."""
    for n in (0, 3, 70, 5000):
        a = values(dtype, n)
        expected = oracle.relu_backward(a, a)
        assert fastrelu.relu_backward(a, a, out=a) is a
        assert_same(a, expected)
