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
