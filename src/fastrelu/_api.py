"""The general path behind the compiled fast path in ``_core``.

``_core`` takes exact, aligned, native, contiguous ndarrays. Every other call
lands here: array-likes are converted, every argument is validated *before* any
memory is written, and the work is done by the ufuncs of ``_core`` (the same
kernels), which handle strides, broadcasting, byte order and overlap between
``out`` and the inputs the way NumPy does.
"""
import numpy as np

from fastrelu import _core

ALL = frozenset(_core.SUPPORTED_DTYPES)
FLOATS = frozenset(_core.FLOAT_DTYPES)


def _names(dtypes):
    return ", ".join(dict.fromkeys(dt.name for dt in _core.SUPPORTED_DTYPES if dt in dtypes))


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
            x = np.from_dlpack(x)
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
    if not out.flags.writeable:
        raise ValueError(f"{func}(): out is read-only")


def _elementwise(ufunc, func, arrays, out, supported=ALL, extra=()):
    """``ufunc(*arrays, *extra, out=out)`` after NumPy-style validation.

    ``arrays`` are (name, value) pairs of the array operands; they must share
    one dtype and one shape (no broadcasting). ``extra`` are scalar operands.
    """
    if out is None and any(_defers(a) for _, a in arrays):
        for name, a in arrays:
            _check_dtype_attr(a, func, name, supported)
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
    like = converted[-1][1]
    if out is None:
        out = np.empty_like(like, dtype=dtype, subok=False)
    else:
        _check_out(out, like.shape, dtype, func)
    ufunc(*(a for _, a in converted), *extra, out=out)
    return out


def _inplace(ufunc, func, x, supported=ALL, extra=()):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{func}() works in place on a numpy.ndarray, not "
                        f"{type(x).__name__}; use {func[:-1]}() for other array-likes")
    _as_array(x, func, "x", supported)
    if not x.flags.writeable:
        raise ValueError(f"{func}(): x is read-only")
    ufunc(x, *extra, out=x)
    return x


def relu(x, out=None):
    return _elementwise(_core.ufunc_relu, "relu", [("x", x)], out)


def relu_(x):
    return _inplace(_core.ufunc_relu, "relu_", x)


def relu_grad(x, out=None):
    return _elementwise(_core.ufunc_relu_grad, "relu_grad", [("x", x)], out)


def relu_backward(grad_output, x, out=None):
    return _elementwise(_core.ufunc_relu_backward, "relu_backward",
                        [("grad_output", grad_output), ("x", x)], out)


def relu6(x, out=None):
    return _elementwise(_core.ufunc_relu6, "relu6", [("x", x)], out)


def relu6_(x):
    return _inplace(_core.ufunc_relu6, "relu6_", x)


def relu6_backward(grad_output, x, out=None):
    return _elementwise(_core.ufunc_relu6_backward, "relu6_backward",
                        [("grad_output", grad_output), ("x", x)], out)


def leaky_relu(x, negative_slope, out=None):
    return _elementwise(_core.ufunc_leaky_relu, "leaky_relu", [("x", x)], out,
                        FLOATS, (negative_slope,))


def leaky_relu_(x, negative_slope):
    return _inplace(_core.ufunc_leaky_relu, "leaky_relu_", x, FLOATS, (negative_slope,))


def leaky_relu_backward(grad_output, x, negative_slope, out=None):
    return _elementwise(_core.ufunc_leaky_relu_backward, "leaky_relu_backward",
                        [("grad_output", grad_output), ("x", x)], out, FLOATS,
                        (negative_slope,))
