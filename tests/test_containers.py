"""Containers get the ndarray contract (issue 9, item 3), for every operation of
the registry: pandas Series and DataFrame, xarray DataArray and Dataset, dask
arrays.

* good input: every dtype the operation takes (one per container, and mixed
  per column / data variable), the values bit-exact with ``fastrelu._reference``
  on the underlying data, the container's type and metadata kept (index,
  columns, name, attrs, dims, coords, chunks), dask lazy, inputs unchanged;
* mismatched shapes (broadcastable ones included), mismatched dtypes,
  unsupported dtypes (a TypeError naming the column or data variable),
  different labels (fastrelu does not align): the documented error, raised at
  call time from the metadata (a dask input that is computed raises an
  AssertionError instead);
* the rules around them: parameters cast per column, out=, mixed operand
  kinds, dask arrays of unknown chunk sizes.

The rules are in docs/integrations.rst, "Containers and ndarray subclasses".
"""
import numpy as np
import pytest

import fastrelu as fr
from helpers import (BINARY_OPS, OPS, UNARY_OPS, assert_same, call, expected, native_dtype,
                     op_id, param_sets, random_values)

pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

KINDS = ("Series", "DataFrame", "DataArray", "Dataset", "dask")
SINGLE = ("Series", "DataArray", "dask")       # one dtype per container
MULTI = ("DataFrame", "Dataset")               # one dtype per column / data variable
LABELLED = ("Series", "DataFrame", "DataArray", "Dataset")

N = 21                  # pandas: rows
SHAPE = (3, 7)          # xarray and dask: (row, col)
CHUNKS = (2, 4)


# --- building containers -----------------------------------------------------------------

def _explode(block):
    """A dask block function that fails when the data is computed (dask calls it
    on empty arrays to find the metadata, which is fine)."""
    if block.size:
        raise AssertionError("the dask input was computed")
    return block


COMPUTED = []


def _count(block):
    if block.size:
        COMPUTED.append(block.shape)
    return block


def labels(n, shift=0):
    return [f"r{i + shift}" for i in range(n)]


def keys(n):
    return [f"c{i}" for i in range(n)]


def build(kind, arrays, *, shift=0, attrs=None, name="x", names=None, dask=None):
    """A container of ``kind`` holding ``arrays``: one array for Series, DataArray
    and dask, one per column / data variable (named ``names``) for DataFrame and
    Dataset. ``shift`` moves the index / coordinate labels; ``dask``
    ("explode", "count") makes dask inputs that fail or count when computed."""
    attrs = dict(attrs or {})
    if kind == "Series":
        (a,) = arrays
        s = pd.Series(a, index=pd.Index(labels(len(a), shift), name="idx"), name=name)
        s.attrs.update(attrs)
        return s
    if kind == "DataFrame":
        n = len(arrays[0]) if arrays else N
        df = pd.DataFrame(dict(zip(names or keys(len(arrays)), arrays)),
                          index=pd.Index(labels(n, shift), name="idx"))
        df.columns.name = "cols"
        df.attrs.update(attrs)
        return df
    if kind == "dask":
        (a,) = arrays
        d = da.from_array(a, chunks=CHUNKS[-a.ndim:] if a.ndim else ())
        if dask is not None:
            d = d.map_blocks(_explode if dask == "explode" else _count, dtype=a.dtype)
        return d

    def coords(shape):
        rows = shape[0] if len(shape) == 2 else SHAPE[0]
        c = {"row": labels(rows, shift), "tag": ("row", np.arange(rows) * 10)}
        if shape:
            c["col"] = np.arange(shape[-1])
        return c

    def dims(a):
        return ("row", "col")[-a.ndim:] if a.ndim else ()

    if kind == "DataArray":
        (a,) = arrays
        c = coords(a.shape)
        if a.ndim < 2:
            c = {k: v for k, v in c.items() if k in dims(a)}
        return xr.DataArray(a, dims=dims(a), coords=c, name=name, attrs=attrs)
    if kind == "Dataset":
        shape = arrays[0].shape if arrays else SHAPE
        variables = {k: (dims(a), a, {"units": k})
                     for k, a in zip(names or keys(len(arrays)), arrays)}
        return xr.Dataset(variables, coords=coords(shape), attrs=attrs)
    raise ValueError(kind)


def data(kind, dtype, rng, shape=None):
    """Random values of ``dtype`` (special values mixed in) for one field of ``kind``."""
    shape = shape or ((N,) if kind in ("Series", "DataFrame") else SHAPE)
    return random_values(rng, dtype, int(np.prod(shape))).reshape(shape)


def fields(kind, c):
    """The NumPy values of each field of container ``c``."""
    if kind == "Series":
        return [c.to_numpy()]
    if kind == "DataFrame":
        return [c.iloc[:, i].to_numpy() for i in range(c.shape[1])]
    if kind == "DataArray":
        return [c.values]
    if kind == "Dataset":
        return [c[k].values for k in c.data_vars]
    return [c.compute()]


def mixed_params(op):
    """Parameters that every dtype takes, cast differently per dtype: a slope
    rounded to float32 or float64, a bound and a value truncated for integers."""
    return tuple({"slope": 1 / 3, "bound": 2.5, "value": 7.5}[p.kind] for p in op.params)


# --- metadata -----------------------------------------------------------------------------

def expected_name_attrs(kind, g, x):
    """The documented rules: pandas as its binary arithmetic ``g + x`` (x's attrs
    when it has any, else g's; the name when both have the same); xarray as
    apply_ufunc with keep_attrs=True (the first operand's attrs and name)."""
    if kind in ("Series", "DataFrame"):
        attrs = x.attrs or (g.attrs if g is not None else {})
        name = (x.name if g is None or g.name == x.name else None) if kind == "Series" else None
        return name, attrs
    first = g if g is not None else x
    return getattr(first, "name", None), first.attrs


def check_metadata(kind, r, x, g=None):
    """``r`` has ``x``'s type and labels and the documented name and attrs."""
    assert type(r) is type(x)
    if kind == "dask":
        assert r.chunks == x.chunks
        return
    name, attrs = expected_name_attrs(kind, g, x)
    if kind in ("Series", "DataFrame"):
        pd.testing.assert_index_equal(r.index, x.index, exact=True)
        if kind == "DataFrame":
            pd.testing.assert_index_equal(r.columns, x.columns, exact=True)
        else:
            assert r.name == name
        assert r.attrs == attrs
        if attrs:
            assert r.attrs is not x.attrs
    elif kind in ("DataArray", "Dataset"):
        assert dict(r.sizes) == dict(x.sizes)
        assert list(r.coords) == list(x.coords) and r.xindexes.keys() == x.xindexes.keys()
        for k in x.coords:
            xr.testing.assert_identical(r.coords[k], x.coords[k])
        assert r.attrs == attrs
        if kind == "DataArray":
            assert r.dims == x.dims and r.name == name
        else:
            assert list(r.data_vars) == list(x.data_vars)
            for k in x.data_vars:
                first = g if g is not None else x
                assert r[k].dims == x[k].dims and r[k].attrs == first[k].attrs


# --- good input ---------------------------------------------------------------------------

def good_cases():
    """(op, kind, dtypes): each dtype of the operation in a single-dtype container,
    and for DataFrame/Dataset every dtype of the operation at once (one per
    column / variable) and a single float32 column set."""
    cases = [(op, kind, (dt,)) for op in OPS for kind in SINGLE for dt in op.dtype_names]
    cases += [(op, kind, dts) for op in OPS for kind in MULTI
              for dts in (op.dtype_names, ("float32", "float32"))]
    return cases


def case_id(value):
    if isinstance(value, tuple):
        return "+".join(value) if len(value) < 4 else "mixed"
    return op_id(value)


@pytest.mark.parametrize("op, kind, dtypes", good_cases(), ids=case_id)
def test_good_input(op, kind, dtypes, rng):
    """The reference's bits per field, the container's type and metadata,
    dask lazy, the inputs unchanged."""
    params = param_sets(op, dtypes[0])[-1] if len(dtypes) == 1 else mixed_params(op)
    names = [f"{dt}_{i}" for i, dt in enumerate(dtypes)]
    operands = []
    for role in op.inputs:
        arrays = [data(kind, dt, rng) for dt in dtypes]
        operands.append(build(kind, arrays, name=role, names=names,
                              attrs={role: 1, "shared": role},
                              dask="count" if kind == "dask" else None))
    before = [[f.copy() for f in fields(kind, c)] for c in operands]
    del COMPUTED[:]
    r = call(op, operands, params)
    assert not COMPUTED, "a dask input was computed"
    if kind == "dask":
        assert isinstance(r, da.Array) and r.dtype == native_dtype(dtypes[0])
        assert r.chunks == operands[-1].chunks and r.name.startswith(op.name)
    g = operands[0] if op.arity == 2 else None
    check_metadata(kind, r, operands[-1], g)
    got = fields(kind, r)
    assert len(got) == len(dtypes)
    for i, value in enumerate(got):
        inputs = tuple(f[i] for f in before)
        assert_same(value, expected(op, inputs, params), f"field {i} ({dtypes[i]})")
    for c, b in zip(operands, before):
        for f, f_before in zip(fields(kind, c), b):
            assert_same(f, f_before, "input changed")


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
@pytest.mark.parametrize("kind", ("Series", "DataFrame"))
@pytest.mark.parametrize("g_attrs, x_attrs", [({}, {}), ({"g": 1}, {}), ({}, {"x": 1}),
                                              ({"g": 1}, {"x": 1}), ({"a": 1}, {"a": 1})])
@pytest.mark.parametrize("g_name", ("x", "g"))
def test_pandas_name_and_attrs_follow_binary_arithmetic(op, kind, g_attrs, x_attrs, g_name,
                                                        rng):
    """A backward's name and attrs are those of pandas' ``grad_output + x``."""
    params = param_sets(op, "float64")[0]
    arrays = [[data(kind, "float64", rng)] for _ in range(2)]
    g = build(kind, arrays[0], name=g_name, attrs=g_attrs)
    x = build(kind, arrays[1], name="x", attrs=x_attrs)
    r = call(op, (g, x), params)
    plus = g + x
    assert r.attrs == plus.attrs
    if kind == "Series":
        assert r.name == plus.name
    check_metadata(kind, r, x, g)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_xarray_keeps_attrs_whatever_the_global_option(op, rng):
    """keep_attrs=False set globally does not drop the attrs."""
    params = param_sets(op, "float32")[0]
    operands = [build("DataArray", [data("DataArray", "float32", rng)], name=role,
                      attrs={role: 1}) for role in op.inputs]
    with xr.set_options(keep_attrs=False):
        r = call(op, operands, params)
    check_metadata("DataArray", r, operands[-1], operands[0] if op.arity == 2 else None)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_dask_backed_xarray_stays_lazy(op, rng):
    params = param_sets(op, "float32")[0]
    operands = []
    for role in op.inputs:
        a = data("DataArray", "float32", rng)
        d = build("dask", [a], dask="count")
        operands.append(xr.DataArray(d, dims=("row", "col"), name=role, attrs={role: 1}))
    del COMPUTED[:]
    r = call(op, operands, params)
    assert not COMPUTED and isinstance(r.data, da.Array)
    assert r.dtype == np.float32 and r.attrs == operands[0].attrs
    want = expected(op, tuple(o.data.compute() for o in operands), params)
    assert_same(r.compute().values, want)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_dataframe_duplicate_columns_and_multiindex(op, rng):
    """Duplicate column names, a MultiIndex, several dtypes, the flags: the result
    is built position by position and keeps them all."""
    dts = list(op.dtype_names[:3])
    index = pd.MultiIndex.from_product([["a", "b", "c"], range(N // 3)], names=["k", "n"])
    operands = []
    for role in op.inputs:
        df = pd.DataFrame({i: data("DataFrame", dt, rng) for i, dt in enumerate(dts)},
                          index=index)
        df.columns = pd.Index(["c", "c", "d"][:len(dts)], name="cols")
        df.attrs["role"] = role
        operands.append(df.set_flags(allows_duplicate_labels=True))
    params = mixed_params(op)
    r = call(op, operands, params)
    check_metadata("DataFrame", r, operands[-1], operands[0] if op.arity == 2 else None)
    assert r.flags.allows_duplicate_labels
    for i, dt in enumerate(dts):
        want = expected(op, tuple(o.iloc[:, i].to_numpy() for o in operands), params)
        assert_same(r.iloc[:, i].to_numpy(), want, f"column {i} ({dt})")


@pytest.mark.parametrize("kind", MULTI)
@pytest.mark.parametrize("op", UNARY_OPS, ids=op_id)
def test_without_columns(op, kind):
    """A DataFrame without columns, a Dataset without data variables: an empty
    result of the same kind with the labels kept."""
    x = build(kind, [], attrs={"a": 1})
    params = mixed_params(op)
    r = call(op, (x,), params)
    check_metadata(kind, r, x)
    assert fields(kind, r) == []


# --- the errors -----------------------------------------------------------------------------

def operand_pair(op, kind, rng, g_spec, x_spec, dask="explode", **x_kwargs):
    """Two containers of ``kind`` from ``(dtypes, shape, build kwargs)`` specs."""
    made = []
    for (dtypes, shape, kwargs), role in zip((g_spec, x_spec), op.inputs):
        arrays = [data(kind, dt, rng, shape) for dt in dtypes]
        made.append(build(kind, arrays, name=role, dask=dask if kind == "dask" else None,
                          **kwargs))
    return made


def default_shape(kind):
    return (N,) if kind in ("Series", "DataFrame") else SHAPE


#: Shapes of grad_output that differ from x's: broadcastable ones (NumPy and the
#: containers would broadcast them) and plain different ones.
def other_shapes(kind):
    if kind in ("Series", "DataFrame"):
        return {"one-row": (1,), "shorter": (N - 1,)}
    return {"broadcast-row": (1, SHAPE[1]), "lower-ndim": (SHAPE[1],),
            "shorter": (SHAPE[0], SHAPE[1] - 1)}


SHAPE_CASES = [(op, kind, variant) for op in BINARY_OPS for kind in KINDS
               for variant in other_shapes(kind)]


@pytest.mark.parametrize("op, kind, variant", SHAPE_CASES, ids=op_id)
def test_mismatched_shape_is_a_value_error(op, kind, variant, rng):
    """No broadcasting: ValueError at call time, without computing dask inputs."""
    n_fields = 2 if kind in MULTI else 1
    dts = ("float32",) * n_fields
    g, x = operand_pair(op, kind, rng, (dts, other_shapes(kind)[variant], {}),
                        (dts, default_shape(kind), {}))
    with pytest.raises(ValueError, match="shape|dims"):
        call(op, (g, x), param_sets(op, "float32")[0])


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_dataframe_with_another_column_count_is_a_value_error(op, rng):
    g, x = operand_pair(op, "DataFrame", rng, (("float64",) * 3, (N,), {}),
                        (("float64",) * 2, (N,), {}))
    with pytest.raises(ValueError, match="shape"):
        call(op, (g, x), param_sets(op, "float64")[0])


DTYPE_PAIRS = (("float32", "float64"), ("float64", "float16"), ("int8", "uint8"),
               ("int64", "int32"))
DTYPE_CASES = [(op, kind, pair) for op in BINARY_OPS for kind in KINDS for pair in DTYPE_PAIRS
               if all(dt in op.dtype_names for dt in pair)]


@pytest.mark.parametrize("op, kind, pair", DTYPE_CASES, ids=case_id)
def test_mismatched_dtype_is_a_type_error(op, kind, pair, rng):
    """No promotion: grad_output and x (each column / data variable) of one dtype."""
    g_dt, x_dt = pair
    if kind in MULTI:      # the second of three columns differs
        g_dts, x_dts = (x_dt, g_dt, x_dt), (x_dt, x_dt, x_dt)
    else:
        g_dts, x_dts = (g_dt,), (x_dt,)
    g, x = operand_pair(op, kind, rng, (g_dts, None, {}), (x_dts, None, {}))
    first = op.inputs[0]
    needle = {"DataFrame": f"column 'c1' of {first}", "Dataset": f"variable 'c1' of {first}"}
    with pytest.raises(TypeError, match=f"{needle.get(kind, first)} has dtype {g_dt} "
                                        f"but .* has dtype {x_dt}"):
        call(op, (g, x), param_sets(op, x_dt)[0])


def unsupported(kind, op):
    """dtype name -> a function of n making an array of it (pandas extension
    arrays for the pandas kinds)."""
    made = {
        "bool": lambda n: np.arange(n) % 2 == 0,
        "complex128": lambda n: np.arange(n) * (1 - 1j),
        "datetime64[ns]": lambda n: np.arange(n).astype("datetime64[ns]"),
        "object": lambda n: np.array([float(i) for i in range(n)], dtype=object),
        "longdouble": lambda n: np.arange(n, dtype=np.longdouble),
    }
    if op.dtypes == "float":
        made.update({"int64": lambda n: np.arange(n) - 3,
                     "uint8": lambda n: np.arange(n, dtype=np.uint8)})
    if kind in ("Series", "DataFrame"):
        made.update({"Int64": lambda n: pd.array(range(n), dtype="Int64"),
                     "Float64": lambda n: pd.array(np.arange(n) - 2.5, dtype="Float64"),
                     "string": lambda n: pd.array([str(i) for i in range(n)], dtype="string"),
                     "category": lambda n: pd.Categorical(np.arange(n) % 3)})
    return made


UNSUPPORTED_CASES = [(op, kind, dt, where) for op in OPS for kind in KINDS
                     for dt in unsupported(kind, op) for where in op.inputs]


@pytest.mark.parametrize("op, kind, bad, where", UNSUPPORTED_CASES, ids=op_id)
def test_unsupported_dtype_is_a_type_error_naming_it(op, kind, bad, where, rng):
    """An unsupported dtype (of one column / data variable among good ones) is a
    TypeError naming the operand, the column or variable and the dtype."""
    good = op.dtype_names[-1]
    operands = []
    for role in op.inputs:
        if kind in MULTI:
            n = N if kind == "DataFrame" else SHAPE
            columns = [data(kind, good, rng), None, data(kind, good, rng)]
            columns[1] = (unsupported(kind, op)[bad](int(np.prod(n))) if role == where
                          else data(kind, good, rng))
            if kind == "Dataset":
                columns[1] = np.asarray(columns[1]).reshape(SHAPE)
            operands.append(build(kind, columns, names=["ok", "bad", "ok2"], name=role))
        elif role == where:
            n = N if kind == "Series" else int(np.prod(SHAPE))
            a = unsupported(kind, op)[bad](n)
            if kind != "Series":
                a = np.asarray(a).reshape(SHAPE)
            operands.append(build(kind, [a], name=role,
                                  dask="explode" if kind == "dask" else None))
        else:
            operands.append(build(kind, [data(kind, good, rng)], name=role,
                                  dask="explode" if kind == "dask" else None))
    label = {"DataFrame": f"column 'bad' of {where}",
             "Dataset": f"data variable 'bad' of {where}"}.get(kind, where)
    with pytest.raises(TypeError, match=rf"does not support {label} of dtype"):
        call(op, operands, param_sets(op, good)[0])


def label_variants(kind):
    """Operands of equal shapes and dtypes whose labels differ."""
    variants = {"shifted": {"shift": 1}}
    if kind in MULTI:
        variants["renamed"] = {"names": ["c0", "other"]}
    return variants


LABEL_CASES = [(op, kind, v) for op in BINARY_OPS for kind in LABELLED
               for v in label_variants(kind)]


@pytest.mark.parametrize("op, kind, variant", LABEL_CASES, ids=op_id)
def test_different_labels_are_a_value_error(op, kind, variant, rng):
    """fastrelu does not align: pandas indexes / columns and xarray coordinates /
    data variables must be the same (pandas would align and fill with NaN,
    xarray would take the intersection)."""
    n_fields = 2 if kind in MULTI else 1
    dts = ("float64",) * n_fields
    g, x = operand_pair(op, kind, rng, (dts, None, label_variants(kind)[variant]),
                        (dts, None, {}))
    needle = "index labels|column labels|coordinates|data variables"
    with pytest.raises(ValueError, match=needle):
        call(op, (g, x), param_sets(op, "float64")[0])


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_dataarrays_with_other_dims_are_a_value_error(op, rng):
    """Transposed dims of the transposed shape, or other dim names: ValueError
    (xarray would transpose, or broadcast to an outer product)."""
    x = build("DataArray", [data("DataArray", "float64", rng)])
    transposed = x.T.copy()
    renamed = xr.DataArray(x.values, dims=("a", "b"))
    for g in (transposed, renamed):
        with pytest.raises(ValueError, match="dims"):
            call(op, (g, x), param_sets(op, "float64")[0])


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_dataset_variables_with_other_dims_are_a_value_error(op, rng):
    x = build("Dataset", [data("Dataset", "float64", rng)] * 2)
    g = x.copy()
    g["c1"] = (("col", "row"), x["c1"].values.T)
    with pytest.raises(ValueError, match="dims"):
        call(op, (g, x), param_sets(op, "float64")[0])


# --- parameters per column ----------------------------------------------------------------

@pytest.mark.parametrize("kind", MULTI)
@pytest.mark.parametrize("op", [op for op in OPS if any(p.kind != "slope" for p in op.params)],
                         ids=op_id)
def test_parameter_out_of_range_for_one_column(op, kind, rng):
    """A bound or value is cast for each column's dtype: out of range for the
    int8 column is the ValueError an int8 ndarray gives, though the float64
    column would take it."""
    operands = [build(kind, [data(kind, "float64", rng), data(kind, "int8", rng)])
                for _ in op.inputs]
    params = tuple(300 for _ in op.params)
    with pytest.raises(ValueError, match="out of range for int8"):
        call(op, operands, params)
    with pytest.raises(ValueError, match="out of range for int8"):
        call(op, (np.zeros(3, np.int8),) * op.arity, params)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", [op for op in OPS if op.params], ids=op_id)
def test_parameter_of_a_bad_type(op, kind, rng):
    n_fields = 2 if kind in MULTI else 1
    operands = [build(kind, [data(kind, "float32", rng)] * n_fields,
                      dask="explode" if kind == "dask" else None) for _ in op.inputs]
    with pytest.raises(TypeError, match="must be a real number"):
        call(op, operands, ("0.5",) * len(op.params))


# --- a container with a NumPy array; different kinds ------------------------------------------

@pytest.mark.parametrize("kind", ("Series", "DataFrame", "DataArray", "dask"))
@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
@pytest.mark.parametrize("container", ("grad_output", "x"))
def test_container_with_ndarray(op, kind, container, rng):
    """One operand a container, the other an ndarray of the same shape and dtype:
    the container's kind and labels; another shape or dtype is an error."""
    n_fields = 3 if kind == "DataFrame" else 1
    arrays = [np.stack([data(kind, "float32", rng) for _ in range(n_fields)], axis=-1)
              if kind == "DataFrame" else data(kind, "float32", rng) for _ in range(2)]
    c = build(kind, list(arrays[1].T) if kind == "DataFrame" else [arrays[1]], name="x")
    other = arrays[0]
    operands = (c, other) if container == "grad_output" else (other, c)
    values = (arrays[1], other) if container == "grad_output" else (other, arrays[1])
    params = param_sets(op, "float32")[0]
    r = call(op, operands, params)
    assert type(r) is type(c)
    want = expected(op, values, params)
    got = (np.stack(fields(kind, r), axis=-1) if kind == "DataFrame" else fields(kind, r)[0])
    assert_same(got, want)
    if kind != "dask":
        check_metadata(kind, r, c)
    with pytest.raises(ValueError, match="shape"):
        call(op, (c, other[1:]) if container == "grad_output" else (other[1:], c), params)
    with pytest.raises(TypeError, match="dtype"):
        bad = other.view(np.int32)
        call(op, (c, bad) if container == "grad_output" else (bad, c), params)


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_different_kinds_are_a_type_error(op, rng):
    """Two containers of different kinds (even of one shape and dtype): TypeError;
    and a container never meets an ndarray subclass (its mask would be lost)."""
    a = data("Series", "float64", rng, (7,))
    made = {"Series": pd.Series(a), "DataArray": xr.DataArray(a, dims="t"),
            "dask": da.from_array(a, chunks=3)}
    params = param_sets(op, "float64")[0]
    for gk in made:
        for xk in made:
            if gk != xk:
                with pytest.raises(TypeError, match="same kind"):
                    call(op, (made[gk], made[xk]), params)
        with pytest.raises(TypeError, match="subclass"):
            call(op, (np.ma.masked_array(a, mask=a > 0), made[gk]), params)
    ds = xr.Dataset({"v": ("t", a)})
    with pytest.raises(TypeError, match="Dataset"):
        call(op, (a, ds), params)


# --- out= ------------------------------------------------------------------------------------

OUT_KINDS = ("Series", "DataFrame", "DataArray", "mixed-DataFrame", "Dataset", "dask",
             "dask-DataArray")


def out_operand(kind, rng, role):
    if kind == "mixed-DataFrame":
        return build("DataFrame", [data("DataFrame", "float64", rng),
                                   data("DataFrame", "float32", rng)], name=role)
    if kind == "dask-DataArray":
        return xr.DataArray(build("dask", [data("dask", "float64", rng)], dask="explode"),
                            dims=("row", "col"))
    base = kind if kind in KINDS else "DataFrame"
    n_fields = 2 if base in MULTI else 1
    return build(base, [data(base, "float64", rng) for _ in range(n_fields)], name=role,
                 dask="explode" if base == "dask" else None)


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_out(op, kind, rng):
    """out= with NumPy-backed Series, DataArrays and one-dtype DataFrames: the
    values written into out (an ndarray), after the container checks; with lazy
    (dask) or multi-array (mixed DataFrame, Dataset) containers: TypeError, out
    untouched."""
    params = param_sets(op, "float64")[0]
    operands = [out_operand(kind, rng, role) for role in op.inputs]
    if kind in ("Series", "DataFrame", "DataArray"):
        values = tuple(np.asarray(o) for o in operands)
        out = np.full(values[-1].shape, 7.0)
        assert call(op, operands, params, out=out) is out
        assert_same(out, expected(op, values, params))
        with pytest.raises(TypeError, match="dtype"):
            call(op, operands, params, out=np.zeros(values[-1].shape, np.float32))
    else:
        shape = (N, 2) if kind == "mixed-DataFrame" else SHAPE
        out = np.full(shape, 7.0)
        with pytest.raises(TypeError, match="out="):
            call(op, operands, params, out=out)
        assert (out == 7.0).all()


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_out_keeps_the_label_check(op, rng):
    g, x = operand_pair(op, "Series", rng, (("float64",), None, {"shift": 1}),
                        (("float64",), None, {}))
    with pytest.raises(ValueError, match="index"):
        call(op, (g, x), param_sets(op, "float64")[0], out=np.zeros(N))


# --- dask arrays of unknown chunk sizes ----------------------------------------------------

def unknown_chunks(a, chunks):
    """A dask array with ``a``'s values whose chunk sizes are unknown (NaN)."""
    d = da.from_array(a, chunks=chunks)
    return d[d == d] if a.dtype.kind == "i" else d[~da.isnan(d) | da.isnan(d)]


@pytest.mark.parametrize("op", BINARY_OPS, ids=op_id)
def test_dask_unknown_chunk_sizes(op):
    """Sizes unknown at call time are checked block by block at compute time: a
    mismatch is a ValueError then (dask would broadcast a 1-element block)."""
    params = param_sets(op, "float64")[0]
    x_values = np.arange(-4.0, 4.0)
    x = unknown_chunks(x_values, 3)                       # blocks 3, 3, 2
    g_values = np.linspace(-2, 5, 8)
    assert np.isnan(x.shape[0])
    r = call(op, (unknown_chunks(g_values, 3), x), params)
    assert isinstance(r, da.Array)
    assert_same(r.compute(), expected(op, (g_values, x_values), params))
    bad = call(op, (unknown_chunks(np.ones(7), 3), x), params)    # blocks 3, 3, 1
    with pytest.raises(ValueError, match="shape"):
        bad.compute()
    with pytest.raises(ValueError, match="unknown shape"):
        call(op, (np.ones(8), x), params)
    with pytest.raises(ValueError, match="shape"):         # known dims still checked
        call(op, (da.ones((2, 4), chunks=2), da.ones((3, 3), chunks=2)[da.ones(3) > 0]),
             params)
