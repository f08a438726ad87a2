"""The general path behind the compiled fast path in ``_core``.

``_core`` takes exact, aligned, native, contiguous ndarrays. Every other call
lands here: array-likes are converted, every argument is validated *before* any
memory is written, and the work is done by the ufuncs of ``_core`` (the same
kernels), which handle strides, broadcasting, byte order and overlap between
``out`` and the inputs the way NumPy does.
"""
import numpy as np

from fastrelu import _core

_SUPPORTED = frozenset(_core.SUPPORTED_DTYPES)
_SUPPORTED_NAMES = ", ".join(dict.fromkeys(dt.name for dt in _core.SUPPORTED_DTYPES))


def _native(dtype):
    """``dtype`` in native byte order, if it is a supported dtype; else None."""
    try:
        native = dtype.newbyteorder("=")
    except (TypeError, ValueError):  # dtypes without a byte order of their own
        return None
    return native if native in _SUPPORTED else None


def _as_array(x, func, name):
    """``x`` as an ndarray of a supported dtype, zero-copy where possible."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__dlpack__") and not hasattr(x, "__array__"):
            x = np.from_dlpack(x)
        else:
            x = np.asarray(x)
    if _native(x.dtype) is None:
        raise TypeError(f"{func}() does not support {name} of dtype {x.dtype}; "
                        f"supported dtypes: {_SUPPORTED_NAMES}")
    return x


def _defers(x):
    """True for array containers (dask, pandas, xarray, ...) that implement the
    ufunc protocol themselves: the ufunc keeps their type, index and laziness."""
    return (not isinstance(x, np.ndarray)
            and getattr(type(x), "__array_ufunc__", None) is not None)


def _check_dtype_attr(x, func, name):
    """For deferring containers: reject an unsupported ``dtype`` attribute early."""
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and _native(dtype) is None:
        raise TypeError(f"{func}() does not support {name} of dtype {dtype}; "
                        f"supported dtypes: {_SUPPORTED_NAMES}")


def _result(out, shape, dtype, func):
    """A fresh result array, or ``out`` after checking that it can hold one."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}(): out must be a numpy.ndarray, "
                        f"not {type(out).__name__}")
    if _native(out.dtype) != dtype:
        raise TypeError(f"{func}(): out has dtype {out.dtype}, expected {dtype}")
    if out.shape != shape:
        raise ValueError(f"{func}(): out has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{func}(): out is read-only")
    return out


def _unary(ufunc, func, x, out):
    if _defers(x) and out is None:
        _check_dtype_attr(x, func, "x")
        return ufunc(x)
    x = _as_array(x, func, "x")
    dtype = _native(x.dtype)
    out = _result(out, x.shape, dtype, func)
    if out is None:
        out = np.empty_like(x, dtype=dtype, subok=False)
    ufunc(x, out=out)
    return out


def relu(x, out=None):
    return _unary(_core.ufunc_relu, "relu", x, out)


def relu_grad(x, out=None):
    return _unary(_core.ufunc_relu_grad, "relu_grad", x, out)


def relu_(x):
    if not isinstance(x, np.ndarray):
        raise TypeError("relu_() works in place on a numpy.ndarray, not "
                        f"{type(x).__name__}; use relu() for other array-likes")
    _as_array(x, "relu_", "x")
    if not x.flags.writeable:
        raise ValueError("relu_(): x is read-only")
    _core.ufunc_relu(x, out=x)
    return x


def relu_backward(grad_output, x, out=None):
    func = "relu_backward"
    if (_defers(grad_output) or _defers(x)) and out is None:
        _check_dtype_attr(grad_output, func, "grad_output")
        _check_dtype_attr(x, func, "x")
        return _core.ufunc_relu_backward(grad_output, x)
    grad_output = _as_array(grad_output, func, "grad_output")
    x = _as_array(x, func, "x")
    dtype = _native(x.dtype)
    if _native(grad_output.dtype) != dtype:
        raise TypeError(f"{func}(): grad_output has dtype {grad_output.dtype} but x has "
                        f"dtype {x.dtype}; they must be the same")
    if grad_output.shape != x.shape:
        raise ValueError(f"{func}(): grad_output has shape {grad_output.shape} but x has "
                         f"shape {x.shape}; they must be the same")
    out = _result(out, x.shape, dtype, func)
    if out is None:
        out = np.empty_like(x, dtype=dtype, subok=False)
    _core.ufunc_relu_backward(grad_output, x, out=out)
    return out
