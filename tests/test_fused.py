"""The fused operations (``_registry.FUSED``) against the reference
(``fastrelu._reference``): every row, dtype, axis and layout; errors before any
write; ``out`` and its aliases; threads and instruction-set levels that give
the same bits; the bias gradient's documented error bound."""
import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastrelu
from fastrelu import _engine, _fused, _reference
from fastrelu._registry import FUSED, FUSED_BY_NAME

from helpers import (OUT_KINDS, assert_same, make_out, native_dtype, random_values,
                     relayout, snapshot, to_native)

pytestmark = pytest.mark.core

SHAPES = [(7,), (5, 3), (300, 17), (3, 5, 7, 2), (2, 3, 80), (130, 9), (0, 4)]
LAYOUTS = ("C", "F", "strided", "reversed", "byteswapped", "unaligned", "readonly")


def axes(shape):
    return range(-len(shape), len(shape))


def make(rng, dtype, shape):
    return random_values(rng, dtype, int(np.prod(shape))).reshape(shape)


INPLACE_ROWS = tuple(f.name for f in FUSED if f.name.endswith("_"))   # write into x
OUT_ROWS = tuple(f.name for f in FUSED if f.name not in INPLACE_ROWS)   # take out=


def fused_dtype_params(names=None):
    rows = [f for f in FUSED if names is None or f.name in names]
    return [pytest.param(f, d, id=f"{f.name}-{d}") for f in rows for d in f.dtype_names]


def run(f, arrays, axis=-1, **kwargs):
    """The public function of row ``f`` (``axis`` only where it takes one)."""
    if f.axis:
        kwargs["axis"] = axis
    return getattr(fastrelu, f.name)(*arrays, **kwargs)


def reference(f, arrays, axis=-1):
    kwargs = {"axis": axis} if f.axis else {}
    return getattr(_reference, f.name.rstrip("_"))(*(to_native(a) for a in arrays), **kwargs)


def operands(f, rng, dtype, shape, axis=-1):
    """Random operands of ``f``: x (or grad_output, y), a bias, or a mask."""
    x = make(rng, dtype, shape)
    if f.name == "add_relu_":
        return [x, make(rng, dtype, shape)]
    if f.name == "bias_relu":
        return [x, make(rng, dtype, (shape[axis],))]
    if f.name == "bias_relu_backward":
        return [make(rng, dtype, shape), _reference.relu(x)]
    if f.name == "relu_backward_mask":
        return [make(rng, dtype, shape), _reference.relu_with_mask(x)[1]]
    return [x]


def check(f, got, want, arrays, axis):
    """``got`` equals the reference: bit for bit, except the bias gradient,
    which is held to its documented bound against the float64 sum."""
    if not isinstance(want, tuple):
        got, want = (got,), (want,)
    assert isinstance(got, tuple) and len(got) == len(want) == len(f.results)
    for name, g, w in zip(f.results, got, want):
        if name == "grad_bias":
            bound_check(g, w, got[0], arrays[1].shape, axis)
        else:
            assert_same(g, w, name)


def bound_check(grad_bias, exact, grad_x, shape, axis):
    """|grad_bias - float64 sum| <= chain_length * u * sum |grad_x| (+ the final
    rounding to the dtype) where no partial sum overflows; a NaN sum is the
    default NaN."""
    dtype = grad_x.dtype
    u = 2.0 ** -53 if dtype == np.float64 else 2.0 ** -24
    axis = axis % len(shape)
    others = tuple(a for a in range(len(shape)) if a != axis)
    with np.errstate(all="ignore"):
        magnitude = np.abs(to_native(grad_x).astype(np.float64)).sum(axis=others)
        # the bound is for sums that stay in range (no overflow on the way)
        finite = magnitude < float(np.finfo(dtype).max) / 2
        err = np.abs(grad_bias.astype(np.float64) - exact)
        bound = _fused.chain_length(shape, axis) * u * magnitude * 1.01
        bound += np.abs(exact) * float(np.finfo(dtype).eps)   # rounding to the dtype
        bound += float(np.finfo(dtype).smallest_subnormal)
    assert grad_bias.shape == (shape[axis],) and grad_bias.dtype == to_native(grad_x).dtype
    assert np.all(err[finite] <= bound[finite]), (err[finite].max(), bound[finite])
    nan = np.isnan(grad_bias)
    assert np.array_equal(nan, np.isnan(exact))
    assert_same(grad_bias[nan], np.full(nan.sum(), np.nan, grad_bias.dtype), "NaN sums")


@pytest.mark.parametrize("f, dtype", fused_dtype_params())
def test_every_shape_and_axis(f, dtype):
    rng = np.random.default_rng(sum(map(ord, f.name + dtype)))
    for shape in SHAPES:
        for axis in (axes(shape) if f.axis else [-1]):
            arrays = operands(f, rng, dtype, shape, axis)
            want = reference(f, arrays, axis)
            with np.errstate(all="raise"):
                got = run(f, arrays, axis)
            check(f, got, want, arrays, axis)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("f, dtype", fused_dtype_params())
def test_layouts(f, dtype, layout):
    """Any view NumPy makes gives the reference's answer (the mask always in
    the C order of the logical array); the inputs are not changed (but x, by
    an in-place form)."""
    rng = np.random.default_rng(3)
    shape = (37, 19)
    arrays = operands(f, rng, dtype, shape)
    viewed = [relayout(layout, a) if a.dtype != np.uint8 or f.name != "relu_backward_mask"
              or a.ndim > 1 else a for a in arrays]
    written = 1 if f.name in INPLACE_ROWS else 0
    before = [snapshot(a) for a in viewed]
    if written and layout == "readonly":
        with pytest.raises(ValueError, match="read-only"):
            run(f, viewed)
    else:
        got = run(f, viewed)
        if written:
            assert got is viewed[0]
            got = to_native(got)
        check(f, got, reference(f, arrays), arrays, -1)
    for a, b in zip(viewed[written:], before[written:]):
        assert_same(a, b, "input after the call")


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("f, dtype", fused_dtype_params(OUT_ROWS))
def test_out(f, dtype, kind):
    rng = np.random.default_rng(4)
    shape = (41, 13)
    arrays = operands(f, rng, dtype, shape)
    out, untouched = make_out(kind, shape, dtype, 0)
    got = run(f, arrays, out=out)
    first = got[0] if isinstance(got, tuple) else got
    assert first is out
    want = reference(f, arrays)
    assert_same(to_native(out), want[0] if isinstance(want, tuple) else want, "out")
    untouched()


@pytest.mark.parametrize("f, dtype", fused_dtype_params(OUT_ROWS))
def test_out_aliases_an_input(f, dtype):
    """``out`` may be the first operand itself, and for the backward ``y`` too."""
    rng = np.random.default_rng(5)
    arrays = operands(f, rng, dtype, (64, 33))
    want = reference(f, arrays)
    for position in range(2 if f.name == "bias_relu_backward" else 1):
        copies = [a.copy() for a in arrays]
        got = run(f, copies, out=copies[position])
        check(f, got, want, arrays, -1)
        assert (got[0] if isinstance(got, tuple) else got) is copies[position]


@pytest.mark.parametrize("dtype", FUSED_BY_NAME["bias_relu"].dtype_names)
def test_bias_relu_inplace(dtype):
    rng = np.random.default_rng(6)
    for shape in [(50, 7), (4, 3, 90)]:
        for axis in axes(shape):
            x = make(rng, dtype, shape)
            b = make(rng, dtype, (shape[axis],))
            want = _reference.bias_relu(x, b, axis=axis)
            for layout in ("C", "F", "strided", "byteswapped", "unaligned"):
                a = relayout(layout, x)
                assert fastrelu.bias_relu_(a, b, axis=axis) is a
                assert_same(to_native(a), want, layout)


def test_bias_is_a_view_of_x():
    """A bias that shares memory with the output is read before it is written."""
    x = np.arange(-8, 8, dtype=np.float32).reshape(4, 4)
    want = _reference.bias_relu(x, x[0].copy())
    assert_same(fastrelu.bias_relu_(x, x[0]), want)


# --- errors: NumPy's exception types, before anything is written -------------------------

def error_cases():
    f32 = np.ones((4, 3), np.float32)
    return [
        ("add_relu_", ([1.0, 2.0], np.ones(2)), {}, TypeError),
        ("add_relu_", (f32, f32.astype(np.float64)), {}, TypeError),
        ("add_relu_", (f32, f32[:2]), {}, ValueError),
        ("add_relu_", (f32.astype(np.int32), f32.astype(np.int32)), {}, TypeError),
        ("bias_relu", (f32.astype(np.int32), np.ones(3, np.int32)), {}, TypeError),
        ("bias_relu", (f32, np.ones(3, np.float64)), {}, TypeError),
        ("bias_relu", (f32, np.ones(4, np.float32)), {}, ValueError),
        ("bias_relu", (f32, np.ones((1, 3), np.float32)), {}, ValueError),
        ("bias_relu", (f32, np.ones(3, np.float32)), {"axis": 2}, AxisError),
        ("bias_relu", (f32, np.ones(3, np.float32)), {"axis": 1.0}, TypeError),
        ("bias_relu", (np.float32(1), np.ones(1, np.float32)), {}, AxisError),
        ("bias_relu", (f32, np.ones(3, np.float32)), {"out": np.ones((3, 4), np.float32)},
         ValueError),
        ("bias_relu_", ([[1.0, 2.0]], np.ones(2)), {}, TypeError),
        ("bias_relu_backward", (f32, f32.astype(np.float64)), {}, TypeError),
        ("bias_relu_backward", (f32, f32[:2]), {}, ValueError),
        ("bias_relu_backward", (f32, f32), {"axis": -3}, AxisError),
        ("relu_with_mask", (f32.astype(np.complex64),), {}, TypeError),
        ("relu_with_mask", (f32,), {"out": np.ones((4, 3), np.float64)}, TypeError),
        ("relu_backward_mask", (f32, np.zeros(1, np.uint8)), {}, ValueError),
        ("relu_backward_mask", (f32, np.zeros(2, np.int8)), {}, TypeError),
        ("relu_with_counts", (f32,), {"axis": 5}, AxisError),
        ("relu_with_counts", (f32,), {"axis": "0"}, TypeError),
        ("relu_with_counts", (np.float32(1),), {}, AxisError),
        ("relu_with_counts", (np.ma.masked_array(f32),), {}, TypeError),
    ]


@pytest.mark.parametrize("name, args, kwargs, error", error_cases(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_errors_before_any_write(name, args, kwargs, error):
    before = [snapshot(np.asarray(a)) for a in args]
    out = kwargs.get("out")
    out_before = None if out is None else snapshot(out)
    with pytest.raises(error):
        getattr(fastrelu, name)(*args, **kwargs)
    for a, b in zip(args, before):
        assert_same(np.asarray(a), b, "input after a failed call")
    if out is not None:
        assert_same(out, out_before, "out after a failed call")


def test_mask_size_error_names_both_sizes():
    with pytest.raises(ValueError, match=r"20 elements.*3 bytes.*mask has 2"):
        fastrelu.relu_backward_mask(np.ones(20, np.float32), np.zeros(2, np.uint8))


def test_readonly_inplace_and_out():
    x = np.ones((3, 2), np.float32)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fastrelu.bias_relu_(x, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        fastrelu.relu_with_counts(np.ones((3, 2), np.float32), out=x)


# --- threads and instruction-set levels: the same bits ------------------------------------

BIG = [((3000, 257), -1), ((8, 3, 40, 40), 1), ((60000,), 0), ((40, 4000), 0)]


@pytest.mark.parametrize("f, dtype", fused_dtype_params())
def test_threads_and_levels_give_the_same_bits(f, dtype, threaded):
    """Threaded and streamed (the ``threaded`` fixture), with 1 and 2 threads
    and at every instruction-set level: the reference's answer, and a bias
    gradient with the same bits every time."""
    rng = np.random.default_rng(7)
    for shape, axis in BIG:
        arrays = operands(f, rng, dtype, shape, axis)
        want = reference(f, arrays, axis)
        seen = []
        for level in _engine.supported_isa_levels():
            previous = _engine.use_isa(level)
            try:
                for threads in (1, 2):
                    with fastrelu.num_threads(threads):
                        got = run(f, [a.copy() for a in arrays], axis)
                    check(f, got, want, arrays, axis)
                    seen.append(got)
            finally:
                _engine.use_isa(previous)
        for got in seen[1:]:
            for a, b in zip(got if isinstance(got, tuple) else (got,),
                            seen[0] if isinstance(seen[0], tuple) else (seen[0],)):
                assert_same(a, b, "same bits for every thread count and level")


def test_counts_find_dead_units():
    x = np.random.default_rng(8).standard_normal((256, 10)).astype(np.float32)
    x[:, [2, 7]] = -np.abs(x[:, [2, 7]])
    _, active = fastrelu.relu_with_counts(x)
    assert active.dtype == np.int64 and np.flatnonzero(active == 0).tolist() == [2, 7]


def test_mask_is_numpy_packbits_little():
    x = np.array([[1.0, -1.0, 2.0], [0.0, np.nan, 3.0], [-0.0, np.inf, -np.inf]])
    _, mask = fastrelu.relu_with_mask(np.asfortranarray(x))
    assert mask.tolist() == np.packbits((x > 0).ravel(), bitorder="little").tolist()
    assert mask.tolist() == [0b10100101, 0]


@pytest.mark.parametrize("name", [f.name for f in FUSED])
def test_targets_that_overlap_themselves_are_refused(name):
    """A stride-0 target (np.broadcast_arrays, as_strided) would keep only the
    last result of each shared slot: a ValueError before anything is written."""
    f = FUSED_BY_NAME[name]
    rng = np.random.default_rng(9)
    arrays = operands(f, rng, "float32", (4, 3))
    buf = np.full(3, 7, np.float32)
    target = np.lib.stride_tricks.as_strided(buf, (4, 3), (0, 4))
    if name in INPLACE_ROWS:
        arrays[0] = target
        with pytest.raises(ValueError, match="share memory"):
            run(f, arrays)
    else:
        with pytest.raises(ValueError, match="share memory"):
            run(f, arrays, out=target)
    assert (buf == 7).all()
