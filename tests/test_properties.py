"""Property tests (Hypothesis): arrays of every supported dtype in both byte orders,
any shape up to 4-D, arbitrary bit patterns (every NaN payload, signed zeros,
subnormals, integer extremes), and basic-index views of them. Properties:
oracle equality in bits, idempotence, view == copy, relu_ on a copy == relu,
dtype and shape preserved."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastrelu
import oracle
from conftest import arrays
from oracle import assert_same, to_native

SETTINGS = settings(max_examples=100, deadline=None)


@st.composite
def views(draw):
    """An array and a basic-index view of it (slices with steps, integers, newaxis,
    ellipsis); the view may be 0-d, empty, strided or reversed."""
    base = draw(arrays())
    index = draw(hnp.basic_indices(base.shape, allow_newaxis=True, allow_ellipsis=True))
    return base, index


@st.composite
def pairs(draw):
    """(grad_output, x): same shape and type, each in either byte order."""
    x = draw(arrays())
    native = oracle.native_dtype(x.dtype)
    g = draw(arrays(dtype=draw(st.sampled_from([native, native.newbyteorder()])),
                    shape=x.shape))
    return g, x


@SETTINGS
@given(x=arrays())
def test_relu_equals_oracle(x):
    """relu(x) has the oracle's bits, x's shape and x's type in native byte order."""
    before = oracle.snapshot(x)
    r = fastrelu.relu(x)
    assert r.shape == x.shape and r.dtype == oracle.native_dtype(x.dtype)
    assert_same(r, oracle.relu(x))
    assert_same(x, before)


@SETTINGS
@given(x=arrays())
def test_relu_grad_equals_oracle(x):
    """relu_grad(x) has the oracle's bits (1/0 in x's type)."""
    assert_same(fastrelu.relu_grad(x), oracle.relu_grad(x))


@SETTINGS
@given(gx=pairs())
def test_relu_backward_equals_oracle(gx):
    """relu_backward(g, x) has the oracle's bits, for any byte orders of g and x."""
    g, x = gx
    assert_same(fastrelu.relu_backward(g, x), oracle.relu_backward(g, x))


@SETTINGS
@given(x=arrays())
def test_relu_idempotent(x):
    """relu(relu(x)) == relu(x) bit for bit; relu_grad(relu(x)) == relu_grad(x)."""
    once = fastrelu.relu(x)
    assert_same(fastrelu.relu(once), once)
    assert_same(fastrelu.relu_grad(once), fastrelu.relu_grad(x))


@SETTINGS
@given(case=views())
def test_view_equals_copy(case):
    """On any basic-index view: relu(view) == relu(view.copy()) == oracle, and the same
    for relu_grad and relu_backward(view, view)."""
    base, index = case
    view = base[index]
    if not isinstance(view, np.ndarray):           # an integer index can give a scalar
        view = np.asarray(view)
    copy = np.array(view, copy=True)
    for func, ref in ((fastrelu.relu, oracle.relu), (fastrelu.relu_grad, oracle.relu_grad)):
        r = func(view)
        assert_same(r, func(copy))
        assert_same(r, ref(copy))
    assert_same(fastrelu.relu_backward(view, view), oracle.relu_backward(copy, copy))


@SETTINGS
@given(case=views())
def test_relu_inplace_on_view(case):
    """relu_ on a view of a copy of base: the view gets relu's bits, the rest of the
    base is untouched, and relu_ returns the view itself."""
    base, index = case
    work = np.array(base, copy=True)
    index = index if isinstance(index, tuple) else (index,)
    if not isinstance(work[index], np.ndarray):    # all-integer index: a 0-d view instead
        index = index + (Ellipsis,)
    view = work[index]
    expected_view = oracle.relu(view)
    expected = np.array(work, copy=True)
    expected[index] = expected_view
    assert fastrelu.relu_(view) is view
    assert_same(to_native(view), expected_view)
    assert_same(to_native(work), to_native(expected))


@SETTINGS
@given(x=arrays())
def test_relu_inplace_on_copy_equals_relu(x):
    """relu_(x.copy()) has the same values as relu(x), keeps dtype (byte order
    included), shape and identity."""
    y = x.copy()
    r = fastrelu.relu_(y)
    assert r is y and y.dtype == x.dtype and y.shape == x.shape
    assert_same(to_native(y), fastrelu.relu(x))


@SETTINGS
@given(x=arrays(), data=st.data())
def test_out_equals_fresh_result(x, data):
    """relu / relu_grad into an out of either byte order and C or F order equal the
    fresh result."""
    native = oracle.native_dtype(x.dtype)
    out_dtype = data.draw(st.sampled_from([native, native.newbyteorder()]))
    order = data.draw(st.sampled_from("CF"))
    for func in (fastrelu.relu, fastrelu.relu_grad):
        out = np.empty(x.shape, out_dtype, order=order)
        assert func(x, out=out) is out
        assert_same(to_native(out), func(x))
