"""The general path behind the compiled fast path of the public functions.

The fast path (``_fastpath.pxi``) takes exact, aligned, native ndarrays that
are contiguous or 1-D. Every other call lands here, with the operation's
number: array-likes are converted, every argument is validated against the
registry row *before* any memory is written, and the work is done by the
operation's ufunc (``_ufuncs``, the same engine), which handles strides,
broadcasting, byte order and overlap between ``out`` and the inputs the way
NumPy does. The parameter casts used by both paths are here too.
"""
import math
import operator

import numpy as np

from fastrelu._engine import DTYPES, SUPPORTED_DTYPES, writeable
from fastrelu._registry import OPS
from fastrelu._ufuncs import UFUNCS

_SUPPORTED = {key: frozenset(dtypes) for key, dtypes in DTYPES.items()}
ALL = _SUPPORTED["all"]


def _names(dtypes):
    return ", ".join(dict.fromkeys(dt.name for dt in SUPPORTED_DTYPES if dt in dtypes))


def _native(dtype, supported=ALL):
    """``dtype`` in native byte order, if it is in ``supported``; else None."""
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
    return TypeError(f"{func}() does not support {name} of dtype {dtype}; "
                     f"supported dtypes: {_names(supported)}")


def _as_array(x, func, name, supported):
    """``x`` as an ndarray of a supported dtype, zero-copy where possible."""
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


def _defers(x):
    """True for array containers (dask, pandas, xarray, ...) that implement the
    ufunc protocol themselves: the ufunc keeps their type, index and laziness."""
    return (not isinstance(x, np.ndarray)
            and getattr(type(x), "__array_ufunc__", None) is not None)


def _check_dtype_attr(x, func, name, supported):
    """For deferring containers: reject an unsupported ``dtype`` attribute early."""
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and _native(dtype, supported) is None:
        raise _unsupported(func, name, dtype, supported)


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
    func, ufunc, supported = spec.name, UFUNCS[spec.name], _SUPPORTED[spec.dtypes]
    if out is None and any(_defers(a) for _, a in arrays):
        for name, a in arrays:
            _check_dtype_attr(a, func, name, supported)
        dtype = getattr(arrays[-1][1], "dtype", None)
        extra = _param_operands(spec, op, params, dtype if isinstance(dtype, np.dtype)
                                else np.dtype(np.float64))
        return ufunc(*(a for _, a in arrays), *extra)
    converted = [(name, _as_array(a, func, name, supported)) for name, a in arrays]
    (first_name, first), *rest = converted
    dtype = _native(first.dtype, supported)
    for name, a in rest:   # fastrelu's binary ops: grad_output first, x second
        if not _same_type(a.dtype, dtype):
            raise TypeError(f"{func}(): {first_name} has dtype {first.dtype} but {name} has "
                            f"dtype {a.dtype}; they must be the same")
        if a.shape != first.shape:
            raise ValueError(f"{func}(): {first_name} has shape {first.shape} but {name} "
                             f"has shape {a.shape}; they must be the same")
    extra = _param_operands(spec, op, params, dtype)
    like = converted[-1][1]
    if out is None:
        out = np.empty_like(like, dtype=dtype, subok=False)
    else:
        _check_out(out, like.shape, dtype, func)
    ufunc(*(a for _, a in converted), *extra, out=out)
    return out


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
    if dtype.kind == "f":
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
        value = _round_int(int(value), np.finfo(dtype).nmant + 1)
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
    supported = _SUPPORTED[spec.dtypes]
    _as_array(x, func, "x", supported)
    extra = _param_operands(spec, op, params, x.dtype)
    if not writeable(x):
        raise ValueError(f"{func}(): x is read-only")
    UFUNCS[spec.name](x, *extra, out=x)
    return x
