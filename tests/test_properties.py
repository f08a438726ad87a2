"""Property tests (Hypothesis) for every operation of the registry: arrays of
every dtype the op takes in both byte orders, any shape up to 4-D, arbitrary
bit patterns (every NaN payload, signed zeros, subnormals, integer extremes),
any generated parameter, and basic-index views of them. Properties: the
reference's bits, the dtype (native) and shape; applied twice equals the
reference applied twice; view == copy; the in-place twin on a view writes
the view only; ``out`` of either byte order and memory order equals the
fresh result."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from conftest import arrays
from helpers import (INPLACE_OPS, OPS, assert_same, call, call_inplace, expected, native_dtype,
                     op_id, param_sets, snapshot, to_native)

pytestmark = pytest.mark.core

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def operands(draw, op, shape=None):
    """(arrays, params): the operands of ``op`` (same shape and type, each in
    either byte order) and one of its generated parameter tuples."""
    x = draw(arrays(names=op.dtype_names, shape=shape))
    native = native_dtype(x.dtype)
    others = tuple(draw(arrays(dtype=draw(st.sampled_from([native, native.newbyteorder()])),
                               shape=x.shape)) for _ in op.inputs[1:])
    params = draw(st.sampled_from(param_sets(op, native)))
    return others + (x,), params


@st.composite
def views(draw, op):
    """(base arrays, index, params): operands of ``op`` and a basic index (slices
    with steps, integers, newaxis, ellipsis) into them; the view may be 0-d,
    empty, strided or reversed."""
    base, params = draw(operands(op))
    index = draw(hnp.basic_indices(base[0].shape, allow_newaxis=True, allow_ellipsis=True))
    index = index if isinstance(index, tuple) else (index,)
    if not isinstance(base[0][index], np.ndarray):    # all-integer index: a 0-d view instead
        index = index + (Ellipsis,)
    return base, index, params


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_equals_reference(op):
    """The reference's bits, of the operands' shape and type in native byte
    order; the operands unchanged."""
    @SETTINGS
    @given(case=operands(op))
    def check(case):
        arrays_, params = case
        before = [snapshot(a) for a in arrays_]
        r = call(op, arrays_, params)
        assert r.shape == arrays_[-1].shape and r.dtype == native_dtype(arrays_[-1].dtype)
        assert_same(r, expected(op, arrays_, params))
        for a, b in zip(arrays_, before):
            assert_same(a, b)
    check()


@pytest.mark.parametrize("op", [op for op in OPS if op.arity == 1], ids=op_id)
def test_applied_twice(op):
    """op(op(x)) equals the reference applied twice (relu, relu6: idempotent)."""
    @SETTINGS
    @given(case=operands(op))
    def check(case):
        (x,), params = case
        once = call(op, (x,), params)
        assert_same(call(op, (once,), params),
                    expected(op, (expected(op, (x,), params),), params))
        if op.name in ("relu", "relu6"):
            assert_same(call(op, (once,), params), once)
    check()


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_view_equals_copy(op):
    """On any basic-index view of the operands: op(views) == op(copies) ==
    reference."""
    @SETTINGS
    @given(case=views(op))
    def check(case):
        base, index, params = case
        views_ = tuple(a[index] for a in base)
        copies = tuple(np.array(v, copy=True) for v in views_)
        r = call(op, views_, params)
        assert_same(r, call(op, copies, params))
        assert_same(r, expected(op, copies, params))
    check()


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_view(op):
    """The in-place twin on a view of a copy of base: the view gets the
    reference's bits, the rest of the base is untouched, and it returns the
    view itself."""
    @SETTINGS
    @given(case=views(op))
    def check(case):
        (base,), index, params = case
        work = np.array(base, copy=True)
        view = work[index]
        expected_view = expected(op, (view,), params)
        expected_work = to_native(work).copy()
        expected_work[index] = expected_view
        assert call_inplace(op, view, params) is view
        assert_same(to_native(view), expected_view)
        assert_same(to_native(work), expected_work)
    check()


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_copy_equals_function(op):
    """The in-place twin on a copy has the function's values and keeps the dtype
    (byte order included), shape and identity."""
    @SETTINGS
    @given(case=operands(op))
    def check(case):
        (x,), params = case
        y = x.copy()
        assert call_inplace(op, y, params) is y
        assert y.dtype == x.dtype and y.shape == x.shape
        assert_same(to_native(y), call(op, (x,), params))
    check()


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_out_equals_fresh_result(op):
    """The op into an out of either byte order and C or F order equals the
    fresh result."""
    @SETTINGS
    @given(case=operands(op), data=st.data())
    def check(case, data):
        arrays_, params = case
        native = native_dtype(arrays_[-1].dtype)
        out = np.empty(arrays_[-1].shape, data.draw(st.sampled_from([native,
                                                                     native.newbyteorder()])),
                       order=data.draw(st.sampled_from("CF")))
        assert call(op, arrays_, params, out=out) is out
        assert_same(to_native(out), call(op, arrays_, params))
    check()


# --- adversarial views: stride 0 and internal overlap ------------------------------------

@st.composite
def aliased_views(draw, op, writeable=False):
    """(base, view, params): a view of a 1-D native ``base`` made with
    ``as_strided`` whose elements alias each other -- a stride of 0 (what
    ``broadcast_to``/``broadcast_arrays`` hand out) or a stride smaller than the
    view's extent in another axis (``(i, j)`` at ``i + j``) -- of any shape up
    to 3-D, possibly reversed."""
    dtype = np.dtype(draw(st.sampled_from(op.dtype_names)))
    ndim = draw(st.sampled_from([1, 1, 2, 3]))          # 1-D views take the fast path
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    steps = tuple(draw(st.lists(st.sampled_from([0, 0, 0, 1, -1, 2, -2]),
                                min_size=ndim, max_size=ndim)))
    # the base must hold every element the view reaches
    low = sum(min(0, s * (n - 1)) for s, n in zip(steps, shape) if n)
    high = sum(max(0, s * (n - 1)) for s, n in zip(steps, shape) if n)
    size = high - low + 1
    # ordinary values of both signs (so a repeated application shows), or any bits
    ordinary = [v for v in (-8, -3, -1, 0, 1, 5, 7) if v >= 0 or dtype.kind != "u"]
    base = draw(st.one_of(hnp.arrays(dtype, (size,), elements=st.sampled_from(ordinary)),
                          arrays(dtype=dtype, shape=(size,))))
    base = np.ascontiguousarray(to_native(base))
    view = np.lib.stride_tricks.as_strided(base[-low:], shape,
                                           [s * dtype.itemsize for s in steps],
                                           writeable=writeable)
    params = draw(st.sampled_from(param_sets(op, dtype)))
    return base, view, params


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_aliased_inputs_equal_their_copies(op):
    """Inputs whose elements alias each other (stride 0, internal overlap) are
    read like their copies: the reference's bits, and the input unchanged."""
    @SETTINGS
    @given(case=aliased_views(op), data=st.data())
    def check(case, data):
        base, view, params = case
        before = base.copy()
        others = tuple(data.draw(arrays(dtype=view.dtype, shape=view.shape))
                       for _ in op.inputs[1:])
        operands_ = others + (view,)
        copies = tuple(np.array(a, copy=True) for a in operands_)
        assert_same(call(op, operands_, params), expected(op, copies, params))
        assert_same(base, before)
    check()


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_aliased_view(op):
    """The in-place twin on a writeable view whose elements alias each other:
    every memory location the view covers holds op(its old value) -- once,
    whatever the thread count (NumPy's own ufunc gives the same) -- and the
    rest of the base is untouched."""
    @SETTINGS
    @given(case=aliased_views(op, writeable=True), threads=st.sampled_from([1, 2]))
    def check(case, threads):
        import fastrelu
        from fastrelu import _engine
        base, view, params = case
        covered = np.zeros(base.shape, bool)     # the locations the view reaches
        offset = (view.__array_interface__["data"][0]
                  - base.__array_interface__["data"][0]) // base.itemsize
        np.lib.stride_tricks.as_strided(covered[offset:], view.shape,
                                        [s // base.itemsize for s in view.strides],
                                        writeable=True)[...] = True
        want = base.copy()
        want[covered] = expected(op, (base,), params)[covered]
        previous = _engine.thresholds(parallel_min_bytes=1, nogil_min_bytes=0)
        try:
            with fastrelu.num_threads(threads):
                assert call_inplace(op, view, params) is view
        finally:
            _engine.thresholds(**previous)
        assert_same(base, want)
    check()


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_aliased_out_is_thread_count_independent(op):
    """An ``out`` whose elements alias each other (several results for one
    memory location): the same bits on 1 and 2 threads with the threaded path
    forced, and every covered location holds one of the reference results
    aimed at it."""
    @SETTINGS
    @given(case=aliased_views(op, writeable=True), data=st.data())
    def check(case, data):
        import fastrelu
        from fastrelu import _engine
        base, out, params = case
        operands_ = tuple(data.draw(arrays(dtype=out.dtype, shape=out.shape))
                          for _ in op.inputs)
        results = []
        previous = _engine.thresholds(parallel_min_bytes=1, nogil_min_bytes=0)
        try:
            for threads in (1, 2):
                base[...] = 0
                with fastrelu.num_threads(threads):
                    assert call(op, operands_, params, out=out) is out
                results.append(base.copy())
        finally:
            _engine.thresholds(**previous)
        assert_same(results[1], results[0])
        want = expected(op, operands_, params)
        # each element of out reads back as one of the results written to it
        unsigned = f"u{want.dtype.itemsize}"
        assert np.isin(np.array(out, copy=True).view(unsigned).ravel(),
                       want.view(unsigned).ravel()).all()
    check()


# --- ndarray subclasses -------------------------------------------------------------------

class Tagged(np.ndarray):
    """A user subclass that NumPy's ufuncs keep (``__array_wrap__`` by default)."""


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_subclass_views_keep_their_type_and_equal_the_reference(op):
    """Any basic-index view of the operands, as a user subclass or a
    MaskedArray with a drawn mask: the result has the subclass (the masked
    union of the masks, as NumPy's ufuncs give) and the reference's bits."""
    @SETTINGS
    @given(case=views(op), kind=st.sampled_from(["tagged", "masked"]), data=st.data())
    def check(case, kind, data):
        base, index, params = case
        plain = tuple(to_native(a[index]) for a in base)
        if kind == "tagged":
            operands_ = tuple(a.view(Tagged) for a in plain)
        else:
            operands_ = tuple(np.ma.MaskedArray(a, mask=data.draw(
                hnp.arrays(bool, a.shape))) for a in plain)
        r = call(op, operands_, params)
        assert type(r) is type(operands_[0])
        assert_same(np.asarray(r), expected(op, plain, params))
        if kind == "masked":
            want = np.zeros(plain[0].shape, bool)
            for a in operands_:
                want |= np.ma.getmaskarray(a)
            np.testing.assert_array_equal(np.ma.getmaskarray(r), want)
    check()
