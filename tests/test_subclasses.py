"""ndarray subclasses keep what they are (issue 9, item 4), for every operation
of the registry, out of place, in place and with out=.

The oracle for the type and the mask is NumPy's own treatment of the same
operands by the operation's ufunc (``fastrelu.ufuncs``): a MaskedArray stays
masked with the union of the operands' masks, np.matrix stays a matrix, a
user-defined subclass stays itself (with its attributes); the data, under the
mask too, is ``fastrelu._reference`` on the underlying arrays, bit for bit. A
subclass that opts out of ufuncs (``__array_ufunc__ = None``) or refuses them
(returns NotImplemented) is a TypeError naming it, before anything is written.
The rules are in docs/integrations.rst, "Containers and ndarray subclasses".
"""
import functools
import warnings

import numpy as np
import pytest

import fastrelu as fr
from helpers import (BINARY_OPS, INPLACE_OPS, OPS, assert_same, call, call_inplace, call_ufunc,
                     expected, make_layout, native_dtype, op_id, param_sets, snapshot,
                     to_native)


class Tagged(np.ndarray):
    """A trivial subclass whose attribute follows views."""

    def __array_finalize__(self, obj):
        self.tag = getattr(obj, "tag", None)


class NoUfuncs(np.ndarray):
    """Opts out of ufuncs."""
    __array_ufunc__ = None


class Refusing(np.ndarray):
    """Refuses every ufunc."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return NotImplemented


def matrix(a):
    with warnings.catch_warnings():      # np.matrix warns that it is not recommended
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a)


def random_mask(rng, shape):
    """About a third masked, at least one element when there is one."""
    mask = rng.random(shape) < 0.3
    if mask.size and not mask.any():
        mask.flat[rng.integers(mask.size)] = True
    return mask


def make(kind, a, rng):
    """``a`` (kept as the data, its layout included) as subclass ``kind``."""
    if kind == "masked":
        return np.ma.masked_array(a, mask=random_mask(rng, a.shape))
    if kind == "masked-nomask":
        m = np.ma.masked_array(a)
        assert m.mask is np.ma.nomask
        return m
    if kind == "matrix":
        return matrix(a)
    if kind == "tagged":
        t = a.view(Tagged)
        t.tag = "tagged"
        return t
    if kind == "no-ufuncs":
        return a.view(NoUfuncs)
    if kind == "refusing":
        return a.view(Refusing)
    raise ValueError(kind)


def data_of(a):
    """The underlying array (a MaskedArray's data, under the mask too)."""
    return a.view(np.ndarray)


def mask_of(a):
    return np.ma.getmaskarray(a)


def clone(a):
    """An independent copy of the same class, mask and attributes."""
    c = a.copy()
    assert type(c) is type(a)
    return c


KINDS = ("masked", "masked-nomask", "matrix", "tagged")
REFUSING = ("no-ufuncs", "refusing")
LAYOUTS = {"masked": ("C", "F-2d", "step2", "byteswapped", "permuted-3d", "0-d", "empty"),
           "matrix": ("C", "F-2d", "reversed", "byteswapped"),
           "tagged": ("C", "F-2d", "step3-offset", "0-d")}
LAYOUTS["masked-nomask"] = LAYOUTS["masked"]
MODES = ("new", "out", "out-ndarray", "inplace")


def dtypes_of(op):
    return [dt for dt in ("float32", "int16") if dt in op.dtype_names]


def combos(op):
    """Which operands are of the subclass (the others are plain ndarrays)."""
    if op.arity == 1:
        return [op.inputs]
    first, second = op.inputs
    return [(first, second), (first,), (second,)]


def drops_mask(kind, mode):
    """A masked operand into a plain ndarray out: refused (test_masked_into_plain_out)."""
    return kind.startswith("masked") and mode == "out-ndarray"


CASES = [(op, kind, mode, layout, dtype, combo)
         for op in OPS for kind in KINDS for mode in MODES for layout in LAYOUTS[kind]
         for dtype in dtypes_of(op) for combo in combos(op)
         if (mode != "inplace" or op.inplace) and not drops_mask(kind, mode)]


def case_id(value):
    if isinstance(value, tuple):
        return "+".join(value)
    return op_id(value)


def operands_for(op, kind, layout, dtype, combo, values, rng):
    arrays = []
    for role in op.inputs:
        a = make_layout(layout, values(dtype, 24))
        if kind == "matrix":
            a = np.atleast_2d(a)      # the plain operand of a matrix's shape (a view)
        arrays.append(make(kind, a, rng) if role in combo else a)
    return arrays


@pytest.mark.parametrize("op, kind, mode, layout, dtype, combo", CASES, ids=case_id)
def test_subclass(op, kind, mode, layout, dtype, combo, values, rng):
    """Type, mask and attributes as NumPy's ufunc gives them; the reference's
    bits as data everywhere; the masks of the inputs untouched."""
    operands = operands_for(op, kind, layout, dtype, combo, values, rng)
    params = param_sets(op, dtype)[-1]
    raw = [snapshot(data_of(a)) for a in operands]
    masks = [mask_of(a).copy() for a in operands]
    union = np.asarray(functools.reduce(np.logical_or, masks))
    want = expected(op, raw, params)
    twins = [clone(a) for a in operands]           # for NumPy's own ufunc
    if mode == "new":
        r = call(op, operands, params)
        theirs = call_ufunc(op, twins, params, out=...)
        if theirs is np.ma.masked:     # NumPy's 0-d fully masked result: the constant
            assert type(r) is np.ma.MaskedArray and r.shape == () and r.dtype == want.dtype
        else:
            assert type(r) is type(theirs)
            assert_same(mask_of(r), mask_of(theirs), "mask")
        assert all(r is not a for a in operands)
    elif mode == "inplace":
        (x,) = operands
        r = call_inplace(op, x, params)
        assert r is x
        (twin,) = twins
        call_ufunc(op, [twin], params, out=twin)       # np.maximum(ma, 0, out=ma)
        theirs = twin
        assert_same(mask_of(r), mask_of(theirs), "mask")
    else:
        shape = operands[-1].shape
        fill = np.full(want.shape, 7, native_dtype(dtype))
        if mode == "out":
            out_kind = kind if kind != "masked-nomask" else "masked"
            out = make(out_kind, fill, rng)
            out_twin = clone(out)
        else:
            out = fill
        r = call(op, operands, params, out=out)
        assert r is out and out.shape == shape
        theirs = call_ufunc(op, twins, params, out=out_twin) if mode == "out" else out
        assert type(r) is type(theirs)
        assert_same(mask_of(r), mask_of(theirs), "mask of out")
    assert_same(to_native(data_of(r)), want, "data")
    if isinstance(r, np.ma.MaskedArray) and mode != "out-ndarray":
        assert_same(mask_of(r), union if mode != "inplace" else masks[0], "mask: the union")
        if mode == "new" and np.ma.getmask(r) is not np.ma.nomask:
            for a in operands:
                assert not np.shares_memory(np.ma.getmask(r), mask_of(a)), "mask shared"
    if kind == "tagged":
        assert getattr(r, "tag", None) == getattr(theirs, "tag", None)
    for a, before, mask in zip(operands, raw, masks):
        if not (mode == "inplace" or a is r):
            assert_same(data_of(a), before, "an input changed")
        assert_same(mask_of(a), mask, "an input's mask changed")


MASKED_OUT_CASES = [(op, kind, combo) for op in OPS for kind in KINDS
                    if drops_mask(kind, "out-ndarray") for combo in combos(op)]


@pytest.mark.parametrize("op, kind, combo", MASKED_OUT_CASES, ids=case_id)
def test_masked_into_plain_out_is_a_type_error(op, kind, combo, values, rng):
    """A masked operand (with a mask or not) and a plain ndarray out: TypeError
    (NumPy's ufunc would drop the mask); nothing written."""
    operands = operands_for(op, kind, "C", "float32", combo, values, rng)
    raw = [snapshot(data_of(a)) for a in operands]
    out = np.full(operands[-1].shape, 7, np.float32)
    with pytest.raises(TypeError, match="drop the mask"):
        call(op, operands, param_sets(op, "float32")[0], out=out)
    assert (out == 7).all()
    for a, before in zip(operands, raw):
        assert_same(data_of(a), before)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_masked_array_keeps_its_fill_value_and_hides_nothing(op, rng):
    """The example of the issue: the masked slots stay masked (relu6_backward
    of a masked gradient does not expose its data); the fill value is kept."""
    dtype = "float64"
    x = np.ma.masked_array(np.linspace(-8, 8, 12), mask=np.arange(12) % 3 == 0,
                           fill_value=-99.0)
    operands = (np.ma.masked_array(np.full(12, 1.0), mask=np.arange(12) % 4 == 1),
                x)[-op.arity:]
    params = param_sets(op, dtype)[0]
    r = call(op, operands, params)
    assert type(r) is np.ma.MaskedArray
    if op.arity == 1:
        assert r.fill_value == -99.0
    union = functools.reduce(np.logical_or, [mask_of(a) for a in operands])
    assert_same(mask_of(r), union)
    assert r.count() == (~union).sum()
    want = expected(op, [data_of(a) for a in operands], params)
    assert_same(r.filled(0.0)[~union], want[~union])


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_masked_0d_stays_an_array_of_its_dtype(op):
    """A 0-d fully masked result is a 0-d MaskedArray of the input's dtype (NumPy's
    ufunc gives the float64 constant np.ma.masked)."""
    dt = op.dtype_names[0]
    x = np.ma.masked_array(np.array(-1, dt), mask=True)
    r = call(op, (x,) * op.arity, param_sets(op, dt)[0])
    assert type(r) is np.ma.MaskedArray and r.shape == () and r.dtype == np.dtype(dt)
    assert bool(r.mask)


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_on_masked_follows_numpy(op):
    """In place on a MaskedArray: the mask kept, the data under it computed too,
    as ``np.maximum(ma, 0, out=ma)`` does it."""
    a = np.arange(-6.0, 6.0) + 0.5
    mask = np.arange(12) % 3 == 0
    mine, numpys = np.ma.masked_array(a.copy(), mask=mask), np.ma.masked_array(a.copy(), mask=mask)
    params = param_sets(op, "float64")[0]
    call_inplace(op, mine, params)
    assert_same(mine.mask, mask)
    assert_same(mine.data, expected(op, (a,), params))
    if op.name == "relu":
        np.maximum(numpys, 0, out=numpys)
        assert_same(mine.data, numpys.data)
        assert_same(mine.mask, numpys.mask)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_plain_inputs_into_a_masked_out(op):
    """out= a MaskedArray with plain inputs: as NumPy's ufunc, its mask becomes
    the operands' (none)."""
    params = param_sets(op, "float32")[0]
    x = np.linspace(-3, 8, 10).astype(np.float32)
    operands = (x[::-1].copy(), x)[-op.arity:]
    out = np.ma.masked_array(np.zeros(10, np.float32), mask=np.arange(10) % 2 == 0)
    twin = clone(out)
    assert call(op, operands, params, out=out) is out
    call_ufunc(op, operands, params, out=twin)
    assert_same(mask_of(out), mask_of(twin))
    assert not mask_of(out).any()
    assert_same(out.data, expected(op, operands, params))


ERROR_CASES = [(op, kind, mode, where) for op in OPS for kind in REFUSING
               for mode in ("new", "out", "inplace") for where in (*op.inputs, "out")
               if (mode == "inplace") <= op.inplace
               and (where != "out" or mode == "out") and (mode != "inplace" or where == "x")]


@pytest.mark.parametrize("op, kind, mode, where", ERROR_CASES, ids=op_id)
def test_refusing_subclass_is_a_type_error(op, kind, mode, where, rng):
    """A subclass with ``__array_ufunc__ = None`` or one returning NotImplemented:
    a TypeError naming its class; nothing written."""
    dtype = "float32"
    arrays = [np.linspace(-3, 8, 10).astype(dtype) for _ in op.inputs]
    operands = [make(kind, a, rng) if role == where else a
                for role, a in zip(op.inputs, arrays)]
    out = np.full(10, 7, dtype)
    if where == "out":
        out = make(kind, out, rng)
    before = [snapshot(data_of(a)) for a in operands]
    params = param_sets(op, dtype)[0]
    cls = "NoUfuncs" if kind == "no-ufuncs" else "Refusing"
    with pytest.raises(TypeError, match=cls):
        if mode == "inplace":
            call_inplace(op, operands[0], params)
        elif mode == "out":
            call(op, operands, params, out=out)
        else:
            call(op, operands, params)
    for a, b in zip(operands, before):
        assert_same(data_of(a), b)
    assert (data_of(out) == 7).all()


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_subclass_errors_are_the_ndarray_errors(op, rng):
    """The same validation as for ndarrays: dtype, shape, parameters, out."""
    dt = op.dtype_names[-1]
    x = np.ma.masked_array(np.arange(6, dtype=dt), mask=np.arange(6) % 2 == 0)
    params = param_sets(op, dt)[0]
    with pytest.raises(TypeError, match="bool"):
        call(op, (np.ma.masked_array(np.zeros(6, bool)),) * op.arity, params)
    if op.arity == 2:
        with pytest.raises(ValueError, match="shape"):
            call(op, (x[:5], x), params)
        with pytest.raises(TypeError, match="dtype"):
            call(op, (x.astype(np.float32 if dt != "float32" else np.float64), x), params)
    with pytest.raises(ValueError, match="shape"):
        call(op, (x,) * op.arity, params, out=np.ma.masked_array(np.zeros(5, dt)))
    if op.params:
        with pytest.raises(TypeError, match="real number"):
            call(op, (x,) * op.arity, ("1",) * len(op.params))
    if op.inplace:
        ro = x.copy()
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            call_inplace(op, ro, params)


def test_matrix_relu_is_a_matrix():
    m = matrix(np.array([[-1.0, 2.0], [3.0, -4.0]]))
    r = fr.relu(m)
    assert type(r) is np.matrix
    assert_same(data_of(r), np.array([[0.0, 2.0], [3.0, 0.0]]))
    assert fr.relu_(m) is m and type(m) is np.matrix
