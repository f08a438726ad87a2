"""Every operation of the registry against the reference (fastrelu._reference),
bit for bit: every op x dtype x layout x call mode (a fresh result, a separate
``out``, ``out`` aliasing each input, the in-place twin), sizes 0..70, around
128 and 256 and a few thousand, with the generated parameter values
(helpers.param_sets); out= of every kind; the operands of a backward in
every pair of layouts; in-place calls on views; the threaded and streaming
paths (reached deterministically through the ``threaded`` fixture); stride-0
views; and the ufuncs. Inputs of out-of-place calls never change."""
import warnings

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine
from fastrelu._registry import BY_NAME
from helpers import (BINARY_OPS, INPLACE_OPS, LAYOUT_NAMES, OPS, OUT_KINDS, READONLY_LAYOUTS,
                     RELAYOUT_KINDS, applicable_layouts, assert_same, call, call_inplace,
                     call_ufunc, expected, layout_applies, make_inputs, make_layout, make_out,
                     modes, op_dtype_params, op_id, param_cycle, param_sets, relayout,
                     snapshot, threaded_size, to_native, writes_input)

pytestmark = pytest.mark.core

SMALL_SIZES = (*range(71), 127, 128, 129, 255, 256, 257, 1000, 4097)
#: Sizes at the edges of 16-, 32- and 64-byte vectors.
EDGE_SIZES = (0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70, 129, 257)
#: The sizes a fresh result is tried with in each layout: every small size where
#: the kernels get the whole array (contiguous, or 1-D strided: the fast path);
#: the vector edges where NumPy's iterator hands them pieces or buffers; a few
#: for the layouts whose size does not depend on n. The other call modes run
#: the same kernels into another output: the vector edges.
LAYOUT_SIZES = {
    **dict.fromkeys(LAYOUT_NAMES, EDGE_SIZES + (1000, 4097)),
    **dict.fromkeys(("C", "C-2d", "F-2d", "step2", "step3-offset", "reversed", "transposed"),
                    SMALL_SIZES),
    **dict.fromkeys(("0-d", "empty", "empty-2d"), (0, 1, 2, 3)),
}


def mode_sizes(mode, layout):
    """The sizes of `LAYOUT_SIZES`, the vector edges for other modes than "new"."""
    sizes = LAYOUT_SIZES[layout]
    return sizes if mode == "new" else tuple(n for n in sizes if n in EDGE_SIZES + (4097,))


def run(op, mode, arrays, params, out_kind="fresh", keywords=False):
    """Call ``op`` in ``mode``; the result (or what was written) has the
    reference's bits, and the inputs not written to are unchanged."""
    want = expected(op, arrays, params)
    before = [snapshot(a) for a in arrays]
    if mode == "new":
        result = call(op, arrays, params, keywords=keywords)
        assert_same(result, want, f"{op.name} {mode}")
        assert not any(np.shares_memory(result, a) for a in arrays)
    elif mode == "out":
        out, untouched = make_out(out_kind, want.shape, want.dtype, 99)
        assert call(op, arrays, params, out=out, keywords=keywords) is out
        assert_same(to_native(out), want, f"{op.name} out ({out_kind})")
        untouched()
    elif mode == "inplace":
        (x,) = arrays
        dtype, strides = x.dtype, x.strides
        assert call_inplace(op, x, params) is x
        assert (x.dtype, x.strides) == (dtype, strides)
        assert_same(to_native(x), want, f"{op.name}_")
        before[0] = None
    else:                                       # out=<input>
        i = op.inputs.index(mode[len("out="):])
        target = arrays[i]
        assert call(op, arrays, params, out=target, keywords=keywords) is target
        assert_same(to_native(target), want, f"{op.name} {mode}")
        before[i] = None
    for a, b in zip(arrays, before):
        if b is not None:
            assert_same(a, b, "an input not written to changed")


def layout_modes(op, layout):
    """The call modes of ``op`` that apply to inputs in ``layout`` (none that
    writes into an input if the layout is read-only)."""
    return [m for m in modes(op) if not (writes_input(m) and layout in READONLY_LAYOUTS)]


def op_layout_params(ops=OPS, layouts=LAYOUT_NAMES):
    """(op, dtype, layout) for every op, its dtypes and the layouts that apply."""
    return [(op, dt, layout) for op, dt in op_dtype_params(ops) for layout in layouts
            if layout_applies(layout, dt)]


@pytest.mark.parametrize("op, dtype, layout", op_layout_params(), ids=op_id)
def test_against_reference(op, dtype, layout, values):
    """Every op x dtype x layout x call mode, for the layout's sizes (for a fresh
    result every size 0..70, around 128 and 256 and at 1000 and 4097 where the
    kernels see the whole array: SIMD heads, tails and unrolled loops),
    cycling through the generated parameters, given by position or by name;
    and 100_003 elements for a fresh result (above the no-GIL threshold of
    ``_engine.thresholds()``; above the parallel one for 4- and 8-byte types)."""
    for mode in layout_modes(op, layout):
        sizes = mode_sizes(mode, layout)
        for i, (n, params) in enumerate(zip(sizes, param_cycle(op, dtype, len(sizes)))):
            run(op, mode, make_inputs(op, values, dtype, n, layout), params,
                keywords=i % 2 == 1)
    (params,) = param_cycle(op, dtype, 1)
    run(op, "new", make_inputs(op, values, dtype, 100_003, layout), params)


OUT_LAYOUTS = ("C", "step2", "F-2d", "byteswapped", "broadcast-row", "0-d", "empty-2d")


@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
@pytest.mark.parametrize("out_kind", OUT_KINDS)
def test_out_kinds(op, dtype, out_kind, values):
    """out= of every kind (fresh C/F, strided with gaps, byte-swapped, unaligned)
    for inputs in several layouts: the result lands in out and nothing around
    it is written."""
    for layout in applicable_layouts(dtype, OUT_LAYOUTS):
        for n, params in zip((0, 1, 7, 33, 64, 70, 257, 5000), param_cycle(op, dtype, 8)):
            run(op, "out", make_inputs(op, values, dtype, n, layout), params, out_kind)


# --- the two operands of a backward --------------------------------------------------------

def grad_like(op, values, x, kind):
    """A random grad_output for backward ``op`` of x's shape and dtype in
    relayout ``kind``."""
    return relayout(kind, values(x.dtype, x.size).reshape(x.shape))


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS), ids=op_id)
@pytest.mark.parametrize("g_kind", ["strided", "reversed", "byteswapped", "unaligned"])
def test_grad_output_layouts(op, dtype, g_kind, values):
    """Every layout of x with grad_output strided, reversed, byte-swapped or
    unaligned, at the vector edges."""
    sizes = (0, 1, 7, 17, 33, 65, 257)
    for layout in applicable_layouts(dtype):
        for n, params in zip(sizes, param_cycle(op, dtype, len(sizes))):
            x = make_layout(layout, values(dtype, n))
            run(op, "new", (grad_like(op, values, x, g_kind), x), params)


PAIR_DTYPES = ("float16", "float64", "int8", "uint32")


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS, PAIR_DTYPES), ids=op_id)
@pytest.mark.parametrize("x_kind", RELAYOUT_KINDS)
def test_operand_layout_pairs(op, dtype, x_kind, values):
    """x in each layout kind with grad_output in every layout kind, 2-D: a fresh
    result, a Fortran out, and out aliasing each writeable operand."""
    for g_kind in RELAYOUT_KINDS:
        for shape, params in zip([(0, 3), (1, 1), (5, 7), (33, 3), (40, 129)],
                                 param_cycle(op, dtype, 5)):
            n = int(np.prod(shape))

            def operands():
                return (relayout(g_kind, values(dtype, n).reshape(shape)),
                        relayout(x_kind, values(dtype, n).reshape(shape)))
            run(op, "new", operands(), params)
            run(op, "out", operands(), params, "fresh-F")
            for mode, kind in zip((f"out={name}" for name in op.inputs), (g_kind, x_kind)):
                if kind != "readonly":
                    run(op, mode, operands(), params)


@pytest.mark.parametrize("op, dtype", op_dtype_params(BINARY_OPS), ids=op_id)
def test_out_is_both_operands(op, dtype, values):
    """grad_output, x and out all the same array."""
    for n, params in zip((0, 3, 70, 5000), param_cycle(op, dtype, 4)):
        a = values(dtype, n)
        want = expected(op, (a, a), params)
        assert call(op, (a, a), params, out=a) is a
        assert_same(a, want)


# --- forward and backward together -----------------------------------------------------------

#: Where a backward may be given the forward's output instead of its input (the
#: docstrings say so): the same mask, so the same result.
FORWARD_OUTPUT_WORKS = {
    "relu": lambda params: True,
    "relu6": lambda params: True,
    "leaky_relu": lambda params: params[0] > 0,
    "threshold": lambda params: not params[1] > params[0],     # value <= threshold, or NaN
}


@pytest.mark.parametrize("op, dtype", op_dtype_params([op for op in OPS if op.backward]),
                         ids=op_id)
@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "F-2d"])
def test_backward_of_forward_output(op, dtype, layout, values):
    """backward(g, forward(x)) and backward(g, x after forward_) equal the
    reference's chain; where the docs allow the forward's output in place of
    its input, also backward(g, x)."""
    back = BY_NAME[op.backward]
    works = FORWARD_OUTPUT_WORKS.get(op.name, lambda params: False)
    for n in (0, 5, 64, 257, 10_000):
        for params in param_sets(op, dtype):
            named = {p.name: v for p, v in zip(op.params, params)}
            back_params = tuple(named[p.name] for p in back.params)
            x = make_layout(layout, values(dtype, n))
            g = grad_like(back, values, x, "C")
            y = call(op, (x,), params)
            want = expected(back, (g, expected(op, (x,), params)), back_params)
            assert_same(call(back, (g, y), back_params), want)
            x_inplace = relayout("C", x)
            if op.inplace:
                call_inplace(op, x_inplace, params)
                assert_same(call(back, (g, x_inplace), back_params), want)
            if works(params):
                assert_same(call(back, (g, y), back_params), expected(back, (g, x), back_params))


# --- in place ----------------------------------------------------------------------------------

VIEWS = ("a[::2]", "a[1::3]", "a[::-2]", "a[1:-1]", "a[5:17]", "b[:, 1:3]", "b[::2, ::-1]",
         "b.T[1:, :2]", "b[1]", "c[:, ::2, 1]", "c[::-1, 1:, ::3]", "u[::2]")


@pytest.mark.parametrize("op, dtype", op_dtype_params(INPLACE_OPS), ids=op_id)
def test_inplace_view_leaves_rest(op, dtype, values):
    """The in-place twin on a view writes the view's elements and nothing else of
    the parent buffer."""
    for view, params in zip(VIEWS, param_cycle(op, dtype, len(VIEWS))):
        a = values(dtype, 60)
        u = make_layout("unaligned", a) if np.dtype(dtype).itemsize > 1 else a.copy()

        def namespace(flat):
            return {"a": flat, "b": flat.reshape(6, 10), "c": flat.reshape(3, 4, 5), "u": flat}
        parent = u if view.startswith("u") else a
        target = eval(view, namespace(parent))
        expected_parent = snapshot(parent)
        eval(view, namespace(expected_parent))[...] = expected(op, (target,), params)
        assert call_inplace(op, target, params) is target
        assert_same(parent, expected_parent, view)


@pytest.mark.parametrize("op, dtype, layout",
                         [(op, dt, layout) for op, dt in op_dtype_params(INPLACE_OPS)
                          for layout in ("C", "step2", "byteswapped", "unaligned", "0-d", "empty")
                          if layout_applies(layout, dt)], ids=op_id)
def test_inplace_twice(op, dtype, layout, values):
    """Two in-place calls give the reference applied twice, keeping the array's
    identity, dtype, shape and strides."""
    for params in param_sets(op, dtype):
        x = make_layout(layout, values(dtype, 41))
        want = expected(op, (expected(op, (x,), params),), params)
        strides, dt, shape = x.strides, x.dtype, x.shape
        for _ in range(2):
            assert call_inplace(op, x, params) is x
            assert (x.strides, x.dtype, x.shape) == (strides, dt, shape)
        assert_same(to_native(x), want)


# --- results ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_result_is_fresh_each_call(op, dtype, values):
    """Two out-of-place calls return two different arrays with the same bits."""
    (params,) = param_cycle(op, dtype, 1)
    arrays = make_inputs(op, values, dtype, 100)
    r1, r2 = call(op, arrays, params), call(op, arrays, params)
    assert r1 is not r2 and not np.shares_memory(r1, r2)
    assert_same(r1, r2)


@pytest.mark.parametrize("op", OPS, ids=op_id)
@pytest.mark.parametrize("order", ["C", "F"])
def test_result_layout_follows_input(op, order, values):
    """A contiguous input gives a result of the same memory order (KEEPORDER)."""
    (params,) = param_cycle(op, "float32", 1)
    arrays = tuple(np.asarray(values("float32", 24).reshape(4, 6), order=order)
                   for _ in op.inputs)
    r = call(op, arrays, params)
    assert_same(r, expected(op, arrays, params))
    assert r.flags[f"{order}_CONTIGUOUS"]


ALIASES = ("longlong", "ulonglong", "intc", "uintc", "short", "ushort", "byte", "ubyte",
           "intp", "uintp", "half", "single", "double")


@pytest.mark.parametrize("op, alias", [(op, alias) for op in OPS for alias in ALIASES
                                       if np.dtype(alias).name in op.dtype_names], ids=op_id)
def test_platform_alias_dtypes(op, alias, values):
    """The platform aliases of the supported types (e.g. longlong next to int64)
    work and keep their type number, in every mode."""
    dt = np.dtype(alias)
    for mode, params in zip(modes(op), param_cycle(op, dt, len(modes(op)))):
        arrays = tuple(values(dt, 77).view(dt) for _ in op.inputs)
        assert all(a.dtype.num == dt.num for a in arrays)
        want = expected(op, arrays, params)
        assert want.dtype.num == dt.num
        run(op, mode, arrays, params)
    assert call(op, arrays, params).dtype.num == dt.num


# --- the threaded and streaming paths -----------------------------------------------------------

def check_threaded(op, dtype, params, x_values, g_values):
    """``op`` on inputs larger than two thread chunks, in every mode, into
    outputs at offsets 0, 1 and 3 elements from a 64-byte boundary (streaming
    stores), strided, and unaligned; nothing around the outputs written."""
    n = x_values.size
    arrays = (g_values, x_values)[-op.arity:]
    want = expected(op, arrays, params)
    for mode in modes(op):
        run(op, mode, tuple(a.copy() for a in arrays), params)
    buf = np.empty(n + 64 // want.itemsize + 3, dtype=dtype)
    for k in (0, 1, 3):
        out = buf[k:k + n]
        buf[...] = 42
        assert call(op, arrays, params, out=out) is out
        assert_same(out, want)
        assert (buf[:k] == 42).all() and (buf[k + n:] == 42).all()
    for out_kind in ("strided", "unaligned"):
        run(op, "out", arrays, params, out_kind)


THREADED_LAYOUTS = ("F-2d", "step2", "reversed", "permuted-3d", "byteswapped", "unaligned",
                    "broadcast-row", "slices-3d")


@pytest.mark.usefixtures("threaded")
@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_threaded_and_streaming(op, dtype, big_values):
    """Thresholds at 0 and 2 threads: every op and dtype on outputs of more than
    two thread chunks (so split between the threads whatever their address),
    streamed when out of place and apart from the inputs; contiguous and
    offset, misaligned from the chunk boundaries; and in other layouts."""
    n = threaded_size(dtype)
    g, x = big_values(dtype, n + 3)[::-1].copy(), big_values(dtype, n + 3)
    for params in param_sets(op, dtype)[:2]:
        check_threaded(op, dtype, params, x[:n], g[:n])
        check_threaded(op, dtype, params, x[3:], g[3:])
    # the other layouts: the strided kernels, and NumPy's iterator handing the
    # loops large pieces (inner dimensions, byte-swapped or unaligned buffers)
    (params,) = param_cycle(op, dtype, 1)
    for layout in applicable_layouts(dtype, THREADED_LAYOUTS):
        arrays = tuple(make_layout(layout, a) for a in (g, x)[-op.arity:])
        run(op, "new", arrays, params)


@pytest.mark.parametrize("op, dtype",
                         op_dtype_params(dtypes=("float16", "float32", "int8", "uint64")),
                         ids=op_id)
def test_default_parallel_threshold(op, dtype, big_values):
    """With the shipped thresholds: sizes just below, at and above the parallel
    threshold (``_engine.thresholds()["parallel_min_bytes"]``), where the team
    size goes from 1 to 2."""
    p = _engine.thresholds()["parallel_min_bytes"] // np.dtype(dtype).itemsize
    sizes = (p - 1, p, p + 1, 3 * p + 7)
    g, x = big_values(dtype, sizes[-1])[::-1].copy(), big_values(dtype, sizes[-1])
    with fastrelu.num_threads(2):
        for n, params in zip(sizes, param_cycle(op, dtype, len(sizes))):
            arrays = (g[:n], x[:n])[-op.arity:]
            for mode in modes(op):
                run(op, mode, tuple(a.copy() for a in arrays), params)
            run(op, "out", arrays, params, "strided")


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_streaming_at_build_threshold(op, big_values):
    """float32 at the build's own streaming threshold (``_engine.thresholds()
    ["stream_min_bytes"]``, the last-level cache size): no hook involved."""
    n = _engine.thresholds()["stream_min_bytes"] // 4 + 17
    arrays = tuple(big_values("float32", n) for _ in op.inputs)
    (params,) = param_cycle(op, "float32", 1)
    run(op, "new", arrays, params)


# --- stride 0 ------------------------------------------------------------------------------------

def _writeable_stride0():
    """A writeable 1-D view of 5 elements with stride 0 (np.broadcast_arrays gives
    writeable views, for now, with a warning on write)."""
    return np.broadcast_arrays(np.array([-8.0]), np.zeros(5))[0]


def _recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [w.category for w in caught]


def _stride0_case(op, params):
    """The in-place twin of ``op`` and its ufunc with out=x, each on a writeable
    stride-0 view: (ufunc's view, in-place twin's view, their warnings)."""
    a, b = _writeable_stride0(), _writeable_stride0()
    result, ufunc_warnings = _recorded(lambda: call_ufunc(op, (a,), params, out=a))
    assert result is a
    result, inplace_warnings = _recorded(lambda: call_inplace(op, b, params))
    assert result is b
    return a, b, ufunc_warnings, inplace_warnings


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_writeable_stride0_view(op):
    """The in-place twin on a writeable stride-0 view gives NumPy's answer -- its
    ufunc with out=x -- and, like it, warns that it writes to a broadcast view."""
    for params in param_sets(op, "float64"):
        a, b, ufunc_warnings, inplace_warnings = _stride0_case(op, params)
        assert_same(np.asarray(b.base), np.asarray(a.base))
        assert_same(np.array(b), np.array(a))
        assert DeprecationWarning in ufunc_warnings
        assert DeprecationWarning in inplace_warnings


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_writeable_stride0_view_warns_like_numpy(op):
    """... with exactly the ufunc's warnings (so the same ones become errors
    under -W error)."""
    for params in param_sets(op, "float64"):
        _, _, ufunc_warnings, inplace_warnings = _stride0_case(op, params)
        assert inplace_warnings == ufunc_warnings


@pytest.mark.usefixtures("threaded")
@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_stride0_out_threaded(op, values):
    """``out`` of n elements with stride 0 (all one element) on an input large
    enough to be threaded: the same result on 1 and 2 threads, the reference's
    last element (as if written in order)."""
    n = threaded_size("float64")
    for params in param_sets(op, "float64"):
        arrays = make_inputs(op, values, "float64", n)
        want = expected(op, arrays, params)[-1:]
        results = []
        for threads in (1, 2):
            out = np.lib.stride_tricks.as_strided(np.zeros(1), (n,), (0,))
            with fastrelu.num_threads(threads):
                assert call(op, arrays, params, out=out) is out
            results.append(np.array(out[-1:]))
        assert_same(results[0], want)
        assert_same(results[1], want)


# --- the ufuncs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op, dtype", op_dtype_params(), ids=op_id)
def test_ufunc_against_reference(op, dtype, values):
    """The ufunc of every op (parameters as extra operands) gives the reference's
    bits: contiguous, strided and reversed, with a fresh and a given out."""
    for n, params in zip((0, 1, 17, 301, 5000), param_cycle(op, dtype, 5)):
        arrays = make_inputs(op, values, dtype, n)
        for view in (slice(None), slice(None, None, 3), slice(None, None, -1)):
            operands = tuple(a[view] for a in arrays)
            want = expected(op, operands, params)
            assert_same(call_ufunc(op, operands, params), want)
            out = np.empty_like(want)
            assert call_ufunc(op, operands, params, out=out) is out
            assert_same(out, want)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_functions_match_ufuncs(op, values):
    """The function and the ufunc of every op agree on 2-D inputs of every layout."""
    for params in param_sets(op, "float32"):
        arrays = tuple(values("float32", 60).reshape(6, 10) for _ in op.inputs)
        for index in ((), "T", (slice(None, None, 2), slice(1, None, 3)), "F"):
            if index == "T":
                operands = tuple(a.T for a in arrays)
            elif index == "F":
                operands = tuple(np.asfortranarray(a) for a in arrays)
            else:
                operands = tuple(a[index] for a in arrays)
            assert_same(call(op, operands, params), call_ufunc(op, operands, params))


@pytest.mark.parametrize("op", [op for op in OPS if op.arity == 1], ids=op_id)
def test_ufunc_where_and_broadcasting(op):
    """The ufuncs follow NumPy's protocols: where= leaves the masked-off elements
    of out alone; a row broadcasts against a 2-D array (backward operands)."""
    x = np.arange(-6.0, 6.0).reshape(3, 4)
    for params in param_sets(op, "float64"):
        out = np.full_like(x, -7.0)
        call_ufunc(op, (x,), params, out=out, where=x > -3)
        want = np.where(x > -3, expected(op, (x,), params), -7.0)
        assert_same(out, want)


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_ufunc_broadcasts_operands(op):
    """A backward's ufunc broadcasts a row of grad_output against x (the
    functions do not: see test_errors)."""
    x = np.arange(-6.0, 6.0).reshape(3, 4)
    g = np.array([1.0, -2.0, np.inf, 0.5])
    for params in param_sets(op, "float64"):
        want = expected(op, (np.broadcast_to(g, x.shape), x), params)
        assert_same(call_ufunc(op, (g, x), params), want)
