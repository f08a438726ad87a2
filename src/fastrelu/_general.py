"""The general path behind the compiled fast path of the public functions.

The fast path (``_fastpath.pxi``) takes exact, aligned, native ndarrays that
are contiguous or 1-D. Every other call lands here, with the operation's
number: array-likes are converted, every argument is validated against the
registry row *before* any memory is written, and the work is done by the
operation's ufunc (``_ufuncs``, the same engine), which handles strides,
broadcasting, byte order and overlap between ``out`` and the inputs the way
NumPy does. The parameter casts used by both paths are here too.

Two kinds of input are not converted to a plain ndarray (the rules are in
``docs/integrations.rst``, "Containers and ndarray subclasses"):

* ndarray subclasses (``np.ma.MaskedArray``, ``np.matrix``, user classes) are
  validated like ndarrays and handed to the ufunc as they are, so that
  ``__array_wrap__`` / ``__array_ufunc__`` give them NumPy's result type (a
  MaskedArray's mask is the union of the operands' masks);
* containers (pandas Series and DataFrame, xarray DataArray and Dataset, dask
  arrays, and any other non-ndarray with ``__array_ufunc__``) are validated
  from their metadata with the ndarray rules -- per column / data variable, no
  promotion, no broadcasting, no label alignment -- and keep their type,
  labels, attrs and laziness.
"""
import copy
import math
import operator
import sys

import numpy as np

from fastrelu import _memory
from fastrelu._engine import DTYPES, ML_DTYPES, OP_DTYPES, SUPPORTED_DTYPES, is_float, writeable
from fastrelu._registry import OPS
from fastrelu._ufuncs import UFUNCS

#: The supported dtypes by registry dtype set ("all", "float": the fused
#: operations) and by operation name (with the ml_dtypes dtypes of ``Op.ml``).
_SUPPORTED = {**{key: frozenset(dtypes) for key, dtypes in DTYPES.items()},
              **{name: frozenset(dtypes) for name, dtypes in OP_DTYPES.items()}}
ALL = _SUPPORTED["all"]


def _names(dtypes):
    return ", ".join(dict.fromkeys(dt.name for dt in SUPPORTED_DTYPES + ML_DTYPES
                                   if dt in dtypes))


def _native(dtype, supported=ALL):
    """``dtype`` in native byte order, if it is a NumPy dtype in ``supported``;
    else None (pandas extension dtypes included)."""
    if not isinstance(dtype, np.dtype):
        return None
    try:
        native = dtype.newbyteorder("=")
    except (TypeError, ValueError):  # dtypes without a byte order of their own
        return None
    return native if native in supported else None


def _same_type(dtype, expected):
    """``dtype`` is ``expected`` up to byte order. (Test ``is None``: NumPy reads
    ``None != some_dtype`` as a comparison with float64.)"""
    return _native(dtype, (expected,)) is not None


def _unsupported(func, name, dtype, supported):
    why = ""
    if str(dtype).endswith("fnuz"):
        why = (" (its NaN is 0x80, the bits of negative zero in the other formats, "
               "so the sign-bit rule of the kernels does not hold for it)")
    return TypeError(f"{func}() does not support {name} of dtype {dtype}{why}; "
                     f"supported dtypes: {_names(supported)}")


def _dtype_mismatch(func, first, first_dtype, second, second_dtype):
    return TypeError(f"{func}(): {first} has dtype {first_dtype} but {second} has "
                     f"dtype {second_dtype}; they must be the same")


def _shape_mismatch(func, first, first_shape, second, second_shape):
    return ValueError(f"{func}(): {first} has shape {first_shape} but {second} "
                      f"has shape {second_shape}; they must be the same")


def _as_array(x, func, name, supported):
    """``x`` as an ndarray of a supported dtype, zero-copy where possible
    (an ndarray subclass is returned as it is)."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__dlpack__") and not hasattr(x, "__array__"):
            try:
                x = np.from_dlpack(x)
            except (RuntimeError, BufferError, TypeError, ValueError) as e:
                # NumPy cannot represent the producer's dtype (bfloat16, ...) or
                # device: the documented error is a TypeError naming the argument
                raise TypeError(f"{func}() cannot take {name} of type {type(x).__name__} "
                                f"through DLPack: {e}; supported dtypes: "
                                f"{_names(supported)}") from e
        else:
            x = np.asarray(x)
    if _native(x.dtype, supported) is None:
        raise _unsupported(func, name, x.dtype, supported)
    return x


def _check_out(out, shape, dtype, func):
    """Raise unless ``out`` can hold a result of this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}(): out must be a numpy.ndarray, "
                        f"not {type(out).__name__}")
    if not _same_type(out.dtype, dtype):
        raise TypeError(f"{func}(): out has dtype {out.dtype}, expected {dtype}")
    if out.shape != shape:
        raise ValueError(f"{func}(): out has shape {out.shape}, expected {shape}")
    if not writeable(out):
        raise ValueError(f"{func}(): out is read-only")


def _elementwise(spec, op, arrays, out, params):
    """The ufunc of ``spec`` on ``arrays`` after NumPy-style validation.

    ``arrays`` are (name, value) pairs of the array operands; they must share
    one dtype and one shape (no broadcasting). ``params`` are the scalar
    parameters (or None).
    """
    func, supported = spec.name, _SUPPORTED[spec.name]
    kinds = [_container_kind(a) for _, a in arrays]
    if any(kinds):
        return _containers(spec, op, arrays, kinds, out, params)
    converted = [(name, _as_array(a, func, name, supported)) for name, a in arrays]
    (first_name, first), *rest = converted
    dtype = _native(first.dtype, supported)
    for name, a in rest:   # fastrelu's binary ops: grad_output first, x second
        if not _same_type(a.dtype, dtype):
            raise _dtype_mismatch(func, first_name, first.dtype, name, a.dtype)
        if a.shape != first.shape:
            raise _shape_mismatch(func, first_name, first.shape, name, a.shape)
    extra = _param_operands(spec, op, params, dtype)
    operands = [a for _, a in converted]
    if out is not None:
        _check_out(out, operands[-1].shape, dtype, func)
    if any(type(a) is not np.ndarray for a in operands) or (
            out is not None and type(out) is not np.ndarray):
        return _subclasses(spec, converted, extra, dtype, out)
    return _run_arrays(UFUNCS[spec.name], operands, extra, dtype, out)


def _run_arrays(ufunc, arrays, extra, dtype, out=None):
    """The ufunc on validated exact ndarrays, into ``out`` or a new ndarray of
    ``dtype`` (native) in the layout of the last operand."""
    if out is None:
        out = _memory.empty_like(arrays[-1], dtype)
    ufunc(*arrays, *extra, out=out)
    return out


# --- ndarray subclasses ----------------------------------------------------------------
#
# Validated as ndarrays (above), then the ufunc runs on the instances themselves,
# as np.maximum would: ``__array_wrap__`` (MaskedArray, matrix, plain subclasses)
# or ``__array_ufunc__`` (subclasses that override it) makes the result.

def _ufunc_override(a):
    """``a``'s class overrides ndarray's ``__array_ufunc__`` (None included)."""
    return (isinstance(a, np.ndarray)
            and getattr(type(a), "__array_ufunc__", None) is not np.ndarray.__array_ufunc__)


def _refuses_ufuncs(func, named):
    """TypeError for an operand (or out) whose class opts out of ufuncs."""
    for name, a in named:
        if isinstance(a, np.ndarray) and getattr(type(a), "__array_ufunc__", None) is None:
            raise TypeError(f"{func}() cannot take {name} of type {type(a).__name__}: the "
                            f"class opts out of NumPy ufuncs (__array_ufunc__ = None); "
                            f"pass a view of another class, e.g. {name}.view(np.ndarray)")


def _call_ufunc(func, ufunc, named, extra, **kwargs):
    """``ufunc`` on the operands of ``named`` ((name, array) pairs; out= in
    kwargs), with a TypeError naming the operand whose ``__array_ufunc__``
    refused (returned NotImplemented for every operand)."""
    try:
        return ufunc(*(a for _, a in named), *extra, **kwargs)
    except TypeError as e:
        out = kwargs.get("out")
        refusing = [f"{name} ({type(a).__name__})" for name, a in
                    [*named, ("out", out if isinstance(out, np.ndarray) else None)]
                    if _ufunc_override(a)]
        if not refusing:
            raise
        raise TypeError(f"{func}(): the __array_ufunc__ of {', '.join(refusing)} refused "
                        f"the operation: {e}") from e


def _wrapper(operands):
    """The operand whose ``__array_wrap__`` NumPy's ufunc uses for a new
    result: the highest ``__array_priority__`` among the non-exact ndarrays, the
    first one on a tie; None when they are all exact ndarrays."""
    best, priority = None, None
    for a in operands:
        if type(a) is np.ndarray:
            continue
        p = getattr(a, "__array_priority__", 0.0)
        if best is None or p > priority:
            best, priority = a, p
    return best


def _own_mask(result, operands):
    """A MaskedArray result gets a mask of its own. (NumPy's ``__array_wrap__``
    sets a unary result's mask to the input's mask object, so that masking an
    element of the result would mask it in the input too.)"""
    if not isinstance(result, np.ma.MaskedArray):
        return
    mask = np.ma.getmask(result)
    if mask is np.ma.nomask:
        return
    for a in operands:
        other = np.ma.getmask(a)
        if a is not result and other is not np.ma.nomask and np.may_share_memory(mask, other):
            result._mask = mask.copy()
            return


def _subclasses(spec, named, extra, dtype, out):
    """The ufunc on validated operands of which one (or ``out``) is an
    ndarray subclass, the way NumPy's ufuncs treat them."""
    func, ufunc = spec.name, UFUNCS[spec.name]
    operands = [a for _, a in named]
    _refuses_ufuncs(func, [*named, ("out", out)])
    if out is not None:
        if (any(isinstance(a, np.ma.MaskedArray) for a in operands)
                and not isinstance(out, np.ma.MaskedArray)):
            masked = next(name for name, a in named if isinstance(a, np.ma.MaskedArray))
            raise TypeError(f"{func}(): {masked} is a masked array but out is a "
                            f"{type(out).__name__}, which would drop the mask; pass a "
                            f"numpy.ma.MaskedArray as out")
        _call_ufunc(func, ufunc, named, extra, out=out)
        _own_mask(out, operands)
        return out
    if any(_ufunc_override(a) for a in operands):
        # the class's own __array_ufunc__ decides the result
        result = _call_ufunc(func, ufunc, named, extra)
    elif isinstance(_wrapper(operands), np.ma.MaskedArray):
        # as NumPy's __array_wrap__ would give it (the fill value and the other
        # attributes of that operand, the union of the masks), except that a
        # 0-d result with its mask set stays a 0-d array of the dtype rather
        # than becoming np.ma.masked (a float64 constant)
        result = np.empty_like(_wrapper(operands), dtype=dtype)
        _call_ufunc(func, ufunc, named, extra, out=result)
    else:
        # out=...: an array even for 0-d operands, as for ndarrays
        result = _call_ufunc(func, ufunc, named, extra, out=...)
    _own_mask(result, operands)
    return result


# --- containers ------------------------------------------------------------------------
#
# pandas, xarray and dask objects (and any other non-ndarray with
# __array_ufunc__) are validated from their metadata with the ndarray rules,
# then computed so that they keep their type, labels, attrs and laziness:
#
# * Series, DataFrame: the values are computed on NumPy arrays (one dtype group
#   at a time) and the result built with the operand's index and columns;
# * DataArray, Dataset: xarray.apply_ufunc (what their __array_ufunc__ calls),
#   with exact joins and keep_attrs=True; lazy when their data is dask;
# * dask arrays and others: their own __array_ufunc__ (dask's stays lazy).

#: (module, class name, kind); a module that is not imported has no instances.
_KNOWN_CONTAINERS = (
    ("pandas", "Series", "Series"),
    ("pandas", "DataFrame", "DataFrame"),
    ("xarray", "DataArray", "DataArray"),
    ("xarray", "Dataset", "Dataset"),
    ("dask.array", "Array", "dask array"),
)


def _container_kind(x):
    """The kind of container ``x`` is (see _KNOWN_CONTAINERS; "container" for
    other non-ndarrays that implement ``__array_ufunc__``), or None."""
    if isinstance(x, np.ndarray) or getattr(type(x), "__array_ufunc__", None) is None:
        return None
    for module, cls, kind in _KNOWN_CONTAINERS:
        mod = sys.modules.get(module)
        if mod is not None and isinstance(x, getattr(mod, cls)):
            return kind
    return "container"


def _fields(func, name, a, kind, supported):
    """The dtypes of operand ``a``: [(label for messages, key, native dtype)],
    one per column (DataFrame), per data variable (Dataset) or one; an
    unsupported dtype is a TypeError naming the column or variable."""
    if kind == "DataFrame":
        items = [(f"column {c!r} of {name}", i, dt)
                 for i, (c, dt) in enumerate(zip(a.columns, a.dtypes))]
    elif kind == "Dataset":
        items = [(f"data variable {k!r} of {name}", k, v.dtype) for k, v in a.data_vars.items()]
    else:
        if kind == "container" and (not hasattr(a, "dtype") or not isinstance(
                getattr(a, "shape", None), tuple)):
            raise TypeError(f"{func}() cannot validate {name} of type {type(a).__name__}: it "
                            f"has no NumPy dtype and shape; convert it with numpy.asarray")
        items = [(name, None, a.dtype)]
    fields = []
    for label, key, dtype in items:
        native = _native(dtype, supported)
        if native is None:
            raise _unsupported(func, label, dtype, supported)
        fields.append((label, key, native))
    return fields


def _unknown(n):
    """A dimension whose size is not known (dask: NaN)."""
    return n is None or (isinstance(n, float) and math.isnan(n))


def _check_shapes(func, gname, gshape, xname, xshape):
    """Raise unless the shapes are equal; True when some sizes are unknown (dask)
    and the known ones agree."""
    gshape, xshape = tuple(gshape), tuple(xshape)
    unknown = False
    if len(gshape) == len(xshape):
        for m, n in zip(gshape, xshape):
            if _unknown(m) or _unknown(n):
                unknown = True
            elif m != n:
                break
        else:
            return unknown
    raise _shape_mismatch(func, gname, gshape, xname, xshape)


def _check_labels(func, kind, gname, g, xname, x):
    """Two containers of one kind: the same labels (pandas index and columns;
    xarray index coordinates), else ValueError. fastrelu does not align."""
    if kind in ("Series", "DataFrame"):
        axes = [("index", g.index, x.index)]
        if kind == "DataFrame":
            axes.append(("column", g.columns, x.columns))
        for axis, gi, xi in axes:
            if not gi.equals(xi):
                raise ValueError(
                    f"{func}(): {gname} and {xname} have different {axis} labels; fastrelu "
                    f"does not align pandas objects: reindex one like the other first, "
                    f"e.g. {gname}.reindex_like({xname})")
    elif kind in ("DataArray", "Dataset"):
        xr = sys.modules["xarray"]
        try:
            xr.align(g, x, join="exact", copy=False)
        except ValueError as e:
            raise ValueError(f"{func}(): {gname} and {xname} have different coordinates; "
                             f"fastrelu does not align xarray objects ({e})") from None


def _check_pair(func, kind, operands, fields):
    """Validate the two operands of a backward against each other (``kind`` is
    the container kind; one operand may be an ndarray). Returns True when a
    dask shape is unknown (checked block by block at compute time)."""
    (gname, g, gk), (xname, x, xk) = operands
    gf, xf = fields
    both = gk is not None and xk is not None
    if kind == "DataFrame":
        _check_shapes(func, gname, g.shape, xname, x.shape)
        if both:
            _check_labels(func, kind, gname, g, xname, x)
        pairs = (zip(gf, xf) if both else
                 [(f, xf[0]) for f in gf] if xk is None else [(gf[0], f) for f in xf])
        for (gl, _, gd), (xl, _, xd) in pairs:
            if gd != xd:
                raise _dtype_mismatch(func, gl, gd, xl, xd)
        return False
    if kind == "Dataset":
        if set(g.data_vars) != set(x.data_vars):
            raise ValueError(f"{func}(): {gname} has the data variables "
                             f"{sorted(map(str, g.data_vars))} but {xname} has "
                             f"{sorted(map(str, x.data_vars))}; they must be the same")
        gdtypes = {key: (label, dt) for label, key, dt in gf}
        for xl, key, xd in xf:
            gl, gd = gdtypes[key]
            gv, xv = g[key], x[key]
            if gv.dims != xv.dims:
                raise ValueError(f"{func}(): {gl} has dims {gv.dims} but {xl} has dims "
                                 f"{xv.dims}; they must be the same")
            _check_shapes(func, gl, gv.shape, xl, xv.shape)
            if gd != xd:
                raise _dtype_mismatch(func, gl, gd, xl, xd)
        _check_labels(func, kind, gname, g, xname, x)
        return False
    (gl, _, gd), (xl, _, xd) = gf[0], xf[0]
    if gd != xd:
        raise _dtype_mismatch(func, gname, g.dtype, xname, x.dtype)
    if kind == "DataArray" and both and g.dims != x.dims:
        raise ValueError(f"{func}(): {gname} has dims {g.dims} but {xname} has dims "
                         f"{x.dims}; they must be the same (fastrelu does not broadcast "
                         f"or transpose)")
    unknown = _check_shapes(func, gname, g.shape, xname, x.shape)
    if unknown and not both:
        name, shape = (gname, g.shape) if gk is not None else (xname, x.shape)
        raise ValueError(f"{func}(): {name} has an unknown shape {shape} (dask chunk sizes "
                         f"not computed) and cannot be checked against a NumPy array; call "
                         f"{name}.compute_chunk_sizes() first")
    if both:
        _check_labels(func, kind, gname, g, xname, x)
    return unknown


def _containers(spec, op, arrays, kinds, out, params):
    """Operation ``spec`` on operands of which at least one is a container."""
    func, supported = spec.name, _SUPPORTED[spec.name]
    kind = next(k for k in kinds if k)
    operands = []
    for (name, a), k in zip(arrays, kinds):
        if k is None:
            if kind == "Dataset":
                raise TypeError(f"{func}(): {name} is a {type(a).__name__}; a Dataset "
                                f"operand takes another Dataset")
            if isinstance(a, np.ndarray) and type(a) is not np.ndarray:
                raise TypeError(f"{func}(): {name} is an ndarray subclass "
                                f"({type(a).__name__}), which fastrelu does not combine "
                                f"with a {kind}; pass a numpy.ndarray or a {kind}")
            a = _as_array(a, func, name, supported)
        elif k != kind:
            first = next(n for (n, _), kk in zip(arrays, kinds) if kk)
            raise TypeError(f"{func}(): {first} is a {kind} but {name} is a {k} "
                            f"({type(a).__name__}); pass two of the same kind")
        operands.append((name, a, k))
    fields = [_fields(func, name, a, k or "ndarray", supported) for name, a, k in operands]
    unknown = _check_pair(func, kind, operands, fields) if len(operands) == 2 else False
    # the parameters, validated and cast for every dtype of the data
    template_fields = next(f for f, (_, _, k) in zip(reversed(fields), reversed(operands)) if k)
    dtypes = list(dict.fromkeys(dt for _, _, dt in template_fields))
    extras = {dt: _param_operands(spec, op, params, dt) for dt in dtypes}
    if out is not None:
        return _container_out(spec, op, operands, kind, dtypes, out, params)
    call = {"Series": _pandas_series, "DataFrame": _pandas_frame,
            "DataArray": _xarray, "Dataset": _xarray}.get(kind, _deferred)
    return call(spec, operands, fields, extras, unknown)


def _container_out(spec, op, operands, kind, dtypes, out, params):
    """``out=`` with a container operand: NumPy-backed Series, DataFrames of one
    dtype and DataArrays are written into ``out`` as ndarrays (after the
    container checks); lazy or multi-array containers are refused."""
    func = spec.name
    values = []
    for name, a, k in operands:
        if k is None:
            values.append((name, a))
            continue
        data = a.data if k == "DataArray" else a
        if k in ("dask array", "Dataset") or (k == "DataArray"
                                              and not isinstance(data, np.ndarray)):
            raise TypeError(f"{func}(): out= cannot be used with {name} of type "
                            f"{type(a).__name__} (it would compute or merge it); "
                            f"call {func}() without out=")
        if k == "DataFrame" and len(dtypes) > 1:
            raise TypeError(f"{func}(): out= takes a DataFrame whose columns share one "
                            f"dtype; {name} has {', '.join(map(str, dtypes))}")
        values.append((name, np.asarray(data)))
    return _elementwise(spec, op, values, out, params)


def _values(a, kind, key=None):
    """The NumPy values of an operand: all of them, or those of column ``key``."""
    if key is None:
        return np.asarray(a)
    return a.iloc[:, key].to_numpy() if kind == "DataFrame" else a[:, key]


def _pandas_attrs(result, operands):
    """``attrs`` as pandas' binary arithmetic (``grad_output + x``) sets them:
    x's when it has any, else grad_output's."""
    sources = [a for _, a, k in operands if k]
    attrs = next((a.attrs for a in reversed(sources) if a.attrs), {})
    result.attrs = copy.deepcopy(attrs)
    return result


def _common_name(series):
    """pandas' rule for the name of a result: the operands' name if they all
    have the same one, else None."""
    name = series[0].name
    for s in series[1:]:
        try:
            same = s.name is name or bool(s.name == name)
        except (TypeError, ValueError):
            same = False
        if not same:
            return None
    return name


def _pandas_series(spec, operands, fields, extras, unknown):
    ufunc = UFUNCS[spec.name]
    (dtype,) = extras
    template = next(a for _, a, k in reversed(operands) if k)
    values = _run_arrays(ufunc, [_values(a, k) for _, a, k in operands], extras[dtype], dtype)
    result = template._constructor(values, index=template.index, copy=False)
    result = result.__finalize__(template)
    result.name = _common_name([a for _, a, k in operands if k])
    return _pandas_attrs(result, operands)


def _pandas_frame(spec, operands, fields, extras, unknown):
    ufunc = UFUNCS[spec.name]
    position = max(i for i, (_, _, k) in enumerate(operands) if k)
    template, template_fields = operands[position][1], fields[position]
    if len(extras) == 1:      # one dtype: one 2-D call
        (dtype,) = extras
        values = _run_arrays(ufunc, [_values(a, k) for _, a, k in operands],
                             extras[dtype], dtype)
        result = template._constructor(values, index=template.index,
                                       columns=template.columns, copy=False)
        result = result.__finalize__(template)
    else:                     # no columns, or several dtypes: column by column
        result = template.copy(deep=False)
        for _, i, dtype in template_fields:
            columns = [_values(a, k, i) for _, a, k in operands]
            result.isetitem(i, _run_arrays(ufunc, columns, extras[dtype], dtype))
    return _pandas_attrs(result, operands)


def _typed(spec, index, value, dtype):
    """Parameter ``index`` of ``spec`` for ``dtype`` data as a 0-d array of the
    ufunc's operand type (a slope is a Python float, which a ufunc takes in the
    data's precision, but an xarray variable would hold it as float64)."""
    if spec.params[index].kind == "slope":
        return np.array(value, np.float64 if dtype.itemsize == 8 else np.float32)
    return value


def _xarray(spec, operands, fields, extras, unknown):
    """DataArrays and Datasets: ``xarray.apply_ufunc``, as xarray's own
    ``__array_ufunc__`` calls it, but with ``keep_attrs=True`` whatever the
    global option (the attrs and name of the first xarray operand, as xarray
    keeps them) and exact joins (the coordinates were checked). A Dataset is
    computed variable by variable; unless its data variables share one dtype,
    each parameter is a Dataset of 0-d variables, one per data variable, cast
    for that variable's dtype."""
    xr = sys.modules["xarray"]
    if len(extras) == 1:
        (extra,) = extras.values()
    else:
        keys = [(key, dtype) for _, key, dtype in fields[-1]]
        extra = [xr.Dataset({key: ((), _typed(spec, i, extras[dtype][i], dtype))
                             for key, dtype in keys})
                 for i in range(len(spec.params))]
    return xr.apply_ufunc(UFUNCS[spec.name], *(a for _, a, _ in operands), *extra,
                          join="exact", dataset_join="exact", dask="allowed",
                          keep_attrs=True)


class _CheckedBlocks:
    """For dask operands whose sizes are not known at call time: the ufunc on
    each block, after checking that the blocks have the same shape (a
    ValueError at compute time, instead of NumPy broadcasting the blocks)."""

    def __init__(self, func, ufunc, extra):
        self.func, self.ufunc, self.extra = func, ufunc, tuple(extra)

    def __call__(self, *blocks):
        first = blocks[0]
        for block in blocks[1:]:
            if block.shape != first.shape:
                raise _shape_mismatch(self.func, "a block of grad_output", first.shape,
                                      "the block of x", block.shape)
        return self.ufunc(*blocks, *self.extra)


def _deferred(spec, operands, fields, extras, unknown):
    """dask arrays and other containers: their own ufunc protocol (dask's stays
    lazy, block by block)."""
    ufunc = UFUNCS[spec.name]
    (dtype,) = extras
    arrays = [a for _, a, _ in operands]
    if unknown:
        da = sys.modules["dask.array"]
        return da.map_blocks(_CheckedBlocks(spec.name, ufunc, extras[dtype]), *arrays,
                             dtype=dtype, token=spec.name)
    return ufunc(*arrays, *extras[dtype])


def _real(value, func, name):
    """``value`` if it is a real number (Python or NumPy scalar, or 0-d array)."""
    if isinstance(value, (bool, np.bool_, np.timedelta64)) or not (
            isinstance(value, (int, float, np.integer, np.floating))
            or (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf")):
        raise TypeError(f"{func}(): {name} must be a real number, not {type(value).__name__}")
    return value


def slope_value(value, op, index, dtype):
    """A "slope" parameter as a float: the loops use it as float32 for
    float16/float32 data and as float64 for float64 data, so it is rounded
    once to that type here (beyond its range: +-inf, as a cast gives)."""
    spec = OPS[op]
    precision = np.float64 if dtype.itemsize == 8 else np.float32
    return float(_float_cast(_real(value, spec.name, spec.params[index].name),
                             np.dtype(precision)))


def cast_param(value, dtype, op, index):
    """A "bound" or "value" parameter cast to ``dtype``, as a 0-d array of the
    native dtype: rounded to a float dtype (beyond its range: +-inf, as a cast
    gives), truncated toward zero for an integer dtype, where a value out of
    range or not finite is a ValueError."""
    spec = OPS[op]
    func, name = spec.name, spec.params[index].name
    given = _real(value, func, name)
    dtype = dtype.newbyteorder("=")
    if is_float(dtype):
        return _float_cast(value, dtype)
    if isinstance(value, np.ndarray):
        value = value[()]                 # a 0-d array: its scalar
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{func}(): {name}={given!r} cannot be cast to {dtype}")
        value = math.trunc(float(value))
    value = operator.index(value)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise ValueError(f"{func}(): {name}={given!r} is out of range for {dtype} "
                         f"[{info.min}, {info.max}]")
    return np.array(value, dtype=dtype)


def _float_cast(value, dtype):
    """``value`` rounded once to float ``dtype``, as a 0-d array: beyond the
    dtype's range +-inf and below it 0 or a subnormal, as IEEE rounding gives,
    with no warning and no floating-point flag."""
    if isinstance(value, (int, np.integer)):
        finfo = sys.modules["ml_dtypes"].finfo if dtype in ML_DTYPES else np.finfo
        value = _round_int(int(value), finfo(dtype).nmant + 1)
    with np.errstate(all="ignore"):
        return np.array(value).astype(np.float64).astype(dtype)


def _round_int(value, digits):
    """The integer ``value`` rounded to ``digits`` significant bits (to nearest,
    ties to even), as a float: exact, so converting it to the float type of
    that precision does not round a second time; beyond float64, +-inf."""
    magnitude = abs(value)
    drop = magnitude.bit_length() - digits
    if drop > 0:
        kept, rest = magnitude >> drop, magnitude & ((1 << drop) - 1)
        half = 1 << (drop - 1)
        if rest > half or (rest == half and kept & 1):
            kept += 1
        magnitude = kept << drop
    try:
        rounded = float(magnitude)
    except OverflowError:
        rounded = math.inf
    return -rounded if value < 0 else rounded


def _param_operands(spec, op, params, dtype):
    """The parameters as operands of the ufunc (validated and cast)."""
    operands = []
    for index, (param, value) in enumerate(zip(spec.params, params or ())):
        if param.kind == "slope":
            operands.append(slope_value(value, op, index, dtype))
        else:
            operands.append(cast_param(value, dtype, op, index))
    return operands


def run(op, arrays, out, params):
    """Operation ``op`` (its number) on the array operands ``arrays``."""
    spec = OPS[op]
    return _elementwise(spec, op, list(zip(spec.inputs, arrays)), out, params)


def run_inplace(op, x, params):
    """Operation ``op`` written into ``x``; returns ``x``."""
    spec = OPS[op]
    func = spec.name + "_"
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{func}() works in place on a numpy.ndarray, not "
                        f"{type(x).__name__}; use {spec.name}() for other array-likes")
    supported = _SUPPORTED[spec.name]
    _as_array(x, func, "x", supported)
    extra = _param_operands(spec, op, params, x.dtype)
    if not writeable(x):
        raise ValueError(f"{func}(): x is read-only")
    if type(x) is np.ndarray:
        UFUNCS[spec.name](x, *extra, out=x)
    else:
        # an ndarray subclass: as np.maximum(x, 0, out=x) treats it (a
        # MaskedArray keeps its mask; the data under it is computed too)
        _refuses_ufuncs(func, [("x", x)])
        _call_ufunc(func, UFUNCS[spec.name], [("x", x)], extra, out=x)
    return x
