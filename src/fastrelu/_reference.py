"""The reference implementation: every operation of the registry in plain NumPy.

The slow twin of each public function (like Bottleneck's ``bn.slow``): one
function per operation of ``fastrelu._registry.OPS``, with the same name and
the same arguments as the public function (without ``out``), written from the
semantics below and never calling fastrelu's compiled code (this module
imports only the registry). The test suites compare fastrelu against it bit
for bit; it is also a readable statement of what each operation computes.

Common rules
------------
* Inputs are array_likes of a dtype the operation supports (the registry's
  ``op.dtype_names``: every float and integer dtype, or float16/32/64 only;
  and ``op.ml_dtype_names``, the ml_dtypes floats bfloat16, float8_e4m3fn and
  float8_e5m2, when that package is installed),
  any shape, layout and byte order. A binary operation (a backward) takes
  ``grad_output`` and ``x`` of the same dtype (up to byte order) and the same
  shape: no casting, no broadcasting.
* The result is a new C-ordered array of the input's dtype in native byte
  order; the inputs are not modified.
* Results are built by *selecting bits*: every element of the result is the
  bit pattern of an input element, of a parameter, or of a constant (0, 1, 6)
  of the dtype; only ``leaky_relu`` and its backward do arithmetic. So NaN
  payloads and the sign of zero come out exactly, and a masked element is +0
  even where the gradient is inf or NaN.
* Comparisons are IEEE comparisons in the input's dtype: any comparison with
  NaN is False (so "``x <= 0``" is False at NaN, and so is "``x > 0``").

Parameters
----------
* a *slope* (``negative_slope``) is a real number rounded to float32 for
  float16/float32 data and to float64 for float64 data (overflowing to inf);
* a *bound* (``threshold``) and a *value* are real numbers cast to the input's
  dtype: for a float dtype rounded to nearest (ties to even; huge magnitudes
  overflow to inf; NaN and inf stay); for an integer dtype truncated toward
  zero like ``astype``, where a value outside the dtype's range, inf or NaN is
  a ValueError;
* a real number is a Python or NumPy int or float or a 0-d array of one;
  anything else (str, complex, None, bool, a timedelta64, an array of
  ndim > 0) is a TypeError.

Errors are TypeError (an unsupported dtype, operands of different dtypes, a
parameter that is not a real number) or ValueError (operands of different
shapes, a parameter out of an integer dtype's range).
"""
import functools
import math
import sys
from fractions import Fraction

import numpy as np

from fastrelu._registry import BY_NAME, DTYPE_SETS, ML_DTYPE_NAMES, OPS

__all__ = [op.name for op in OPS] + ["bias_relu", "bias_relu_backward", "relu_with_mask",
                                     "relu_backward_mask", "relu_with_counts"]


# --- operands -------------------------------------------------------------------------

def _bits_dtype(dtype):
    """The unsigned integer dtype of ``dtype``'s width."""
    return np.dtype(f"u{dtype.itemsize}")


def _is_ml(dtype):
    """``dtype`` is one of ml_dtypes' floats that the registry names."""
    dtype = np.dtype(dtype)
    return dtype.name in ML_DTYPE_NAMES and dtype.type.__module__.startswith("ml_dtypes")


def _is_float(dtype):
    return dtype.kind == "f" or _is_ml(dtype)


def _finfo(dtype):
    return sys.modules["ml_dtypes"].finfo(dtype) if _is_ml(dtype) else np.finfo(dtype)


@functools.lru_cache(maxsize=None)
def _supported(dtype, op):
    """``dtype`` is one of the dtypes of ``op`` (up to byte order)."""
    if _is_ml(dtype):
        return dtype.name in op.ml_dtype_names
    return dtype.kind in "iuf" and dtype.name in DTYPE_SETS[op.dtypes]


def _operand(a, op, name):
    """``a`` as an ndarray in native byte order (same values), of a supported dtype."""
    if hasattr(a, "__dlpack__") and not hasattr(a, "__array__") and not isinstance(
            a, np.ndarray):
        a = np.from_dlpack(a)
    a = np.asarray(a)
    if not _supported(a.dtype, op):
        raise TypeError(f"{op.name}(): {name} has unsupported dtype {a.dtype}")
    if not a.dtype.isnative:
        a = a.byteswap().view(a.dtype.newbyteorder("="))
    return a


def _operands(op, arrays):
    """The array operands of ``op`` (``op.inputs``), checked and in native byte order."""
    converted = [_operand(a, op, name) for a, name in zip(arrays, op.inputs)]
    first = converted[0]
    for a in converted[1:]:
        if a.dtype != first.dtype:
            raise TypeError(f"{op.name}(): operands of dtypes {first.dtype} and {a.dtype}")
        if a.shape != first.shape:
            raise ValueError(f"{op.name}(): operands of shapes {first.shape} and {a.shape}")
    return converted


def _select(keep, a, b):
    """The bits of ``a`` where ``keep``, else the bits of ``b``: arrays of one dtype,
    each of ``keep``'s shape or 0-d."""
    ut = _bits_dtype(a.dtype)
    out = np.empty(keep.shape, ut)
    np.copyto(out, b.view(ut))
    a = a.view(ut)
    out[keep] = a[keep] if a.shape == keep.shape else a
    return out.view(b.dtype)


def _constant(value, dtype):
    return np.array(value, dtype=dtype)


# --- parameters ------------------------------------------------------------------------

def _real(value, op, name):
    """``value`` as a NumPy or Python scalar if it is a real number, else TypeError."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_, np.timedelta64)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op.name}(): {name} must be a real number, "
                        f"not {type(value).__name__}")
    return value


def _exact(value):
    """A finite real ``value`` as an exact Fraction."""
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    return Fraction(*value.as_integer_ratio())


def _round_to_float(value, dtype):
    """Real ``value`` rounded to float ``dtype`` once (nearest, ties to even), as a
    0-d array: NaN and inf stay, magnitudes beyond the largest finite number
    (after rounding) become inf, zeros keep their sign."""
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        with np.errstate(all="ignore"):
            return np.array(value).astype(dtype)      # float8_e4m3fn: inf is NaN
    q = _exact(value)
    if q == 0:
        negative = isinstance(value, (float, np.floating)) and bool(np.signbit(value))
        return _constant(-0.0 if negative else 0.0, dtype)
    fi = _finfo(dtype)
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1                                                # now 2**e <= a < 2**(e+1)
    e = max(e, fi.minexp)                                     # subnormals: fixed quantum
    quantum = Fraction(2) ** (e - fi.nmant)
    whole, rest = divmod(a / quantum, 1)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    rounded = whole * quantum
    magnitude = math.inf if rounded > Fraction(float(fi.max)) else float(rounded)
    with np.errstate(all="ignore"):       # float8_e4m3fn has no inf: NaN
        return _constant(-magnitude if q < 0 else magnitude, dtype)


def _slope(value, dtype, op, name):
    """A slope parameter in the precision of the arithmetic: float32 for
    float16/float32 data, float64 for float64 data."""
    value = _real(value, op, name)
    return _round_to_float(value, np.float64 if dtype == np.float64 else np.float32)[()]


def _cast(value, dtype, op, name):
    """A bound or value parameter cast to ``dtype`` (a 0-d array)."""
    value = _real(value, op, name)
    if _is_float(dtype):
        return _round_to_float(value, dtype)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"{op.name}(): {name}={value!r} is not finite")
        value = math.trunc(_exact(value))
    value = int(value)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise ValueError(f"{op.name}(): {name}={value} is out of range for {dtype}")
    return _constant(value, dtype)


def _scaled(a, slope):
    """``a * slope`` in the precision of the arithmetic (float32 for float16,
    float32 and the ml_dtypes floats, float64 for float64), rounded to ``a``'s
    dtype; IEEE, no flags. A NaN product keeps its payload in a narrower
    format (`_narrowed_nan`)."""
    with np.errstate(all="ignore"):
        if not _is_ml(a.dtype):
            return (a.astype(slope.dtype) * slope).astype(a.dtype)
        product = _widened(a) * slope
        return _select(np.isnan(product), _narrowed_nan(product, a.dtype),
                       product.astype(a.dtype))


def _widened(a):
    """An ml_dtypes float array as float32, exactly, NaNs with their payload
    (the top of float32's mantissa; ml_dtypes' astype gives a canonical NaN)."""
    fi = _finfo(a.dtype)
    bits = a.view(f"u{a.dtype.itemsize}").astype(np.uint32)
    sign = (bits >> (8 * a.dtype.itemsize - 1)) << 31
    payload = (bits & ((1 << fi.nmant) - 1)) << (23 - fi.nmant)
    nan = (sign | 0x7F800000 | payload).view(np.float32)
    return np.where(np.isnan(a), nan, a.astype(np.float32))


def _narrowed_nan(f, dtype):
    """float32 NaNs ``f`` in the ml_dtypes float ``dtype``: the sign, an
    all-ones exponent and the top bits of the payload (at least the quiet bit,
    which the arithmetic set); float8_e4m3fn has one NaN per sign, S.1111.111.
    (ml_dtypes' astype gives one canonical NaN instead.)"""
    u = f.view(np.uint32).astype(np.uint64)
    fi = _finfo(dtype)
    bits = 8 * dtype.itemsize
    mant = fi.nmant
    sign = (u >> 31) << (bits - 1)
    exponent_ones = ((1 << (bits - 1)) - 1) & ~((1 << mant) - 1)
    if dtype.name == "float8_e4m3fn":
        payload = (1 << mant) - 1
    else:
        payload = (u >> (23 - mant)) & ((1 << mant) - 1)
    return (sign | exponent_ones | payload).astype(f"u{dtype.itemsize}").view(dtype)


# --- the operations ----------------------------------------------------------------------

def relu(x, /):
    """Rectified linear unit: ``0 if x <= 0 else x``.

    NaN is kept with its payload (``NaN <= 0`` is False); -0.0 and -inf become
    +0.0; +inf and positive subnormals are kept. Unsigned integers are returned
    unchanged. Every dtype.
    """
    (x,) = _operands(BY_NAME["relu"], (x,))
    with np.errstate(invalid="ignore"):
        return _select(~(x <= 0), x, _constant(0, x.dtype))


def relu_grad(x, /):
    """Derivative of ReLU: ``1 if x > 0 else 0`` (+0 at both zeros and at NaN; +1
    at +inf). Every dtype."""
    (x,) = _operands(BY_NAME["relu_grad"], (x,))
    with np.errstate(invalid="ignore"):
        return _select(x > 0, _constant(1, x.dtype), _constant(0, x.dtype))


def relu_backward(grad_output, x, /):
    """ReLU backward: ``grad_output if x > 0 else +0``.

    A selection, not a product: where ``x <= 0`` or ``x`` is NaN the result is
    +0 even if ``grad_output`` is inf or NaN; elsewhere it is ``grad_output``'s
    bits. Every dtype.
    """
    g, x = _operands(BY_NAME["relu_backward"], (grad_output, x))
    with np.errstate(invalid="ignore"):
        return _select(x > 0, g, _constant(0, x.dtype))


def relu6(x, /):
    """ReLU clipped at 6: ``0 if x <= 0 else (6 if x >= 6 else x)``.

    NaN is kept with its payload; -0.0 and -inf become +0.0, +inf becomes 6.
    Every dtype (unsigned: ``min(x, 6)``).
    """
    (x,) = _operands(BY_NAME["relu6"], (x,))
    with np.errstate(invalid="ignore"):
        clipped = _select(~(x >= 6), x, _constant(6, x.dtype))
        return _select(~(x <= 0), clipped, _constant(0, x.dtype))


def relu6_backward(grad_output, x, /):
    """ReLU6 backward: ``grad_output if 0 < x < 6 else +0`` (a selection: +0 at
    NaN ``x`` and wherever the mask is off, whatever ``grad_output`` holds).
    Every dtype."""
    g, x = _operands(BY_NAME["relu6_backward"], (grad_output, x))
    with np.errstate(invalid="ignore"):
        return _select((x > 0) & (x < 6), g, _constant(0, x.dtype))


def leaky_relu(x, /, negative_slope=0.01):
    """Leaky ReLU: ``x if x > 0 else x * negative_slope``, float dtypes only.

    ``x > 0``: ``x``'s bits. Otherwise (NaN included) the IEEE product
    ``x * negative_slope`` computed in float32 for float16/float32 data (float16
    converted exactly to float32, the product rounded to float32, then to
    float16) and in float64 for float64 data, with the slope rounded to that
    precision. So NaN propagates (as the product's quiet NaN), -0.0 times a
    positive slope is -0.0, and no floating-point flag or warning is raised.
    Where both ``x`` and the slope are NaN, IEEE 754 lets the product be
    either NaN; this reference gives NumPy's (x86: ``x``'s, quieted).
    """
    op = BY_NAME["leaky_relu"]
    (x,) = _operands(op, (x,))
    slope = _slope(negative_slope, x.dtype, op, "negative_slope")
    with np.errstate(invalid="ignore"):
        return _select(x > 0, x, _scaled(x, slope))


def leaky_relu_backward(grad_output, x, /, negative_slope=0.01):
    """Leaky ReLU backward: ``grad_output if x > 0 else grad_output * negative_slope``,
    float dtypes only, the product computed as in `leaky_relu` (so it is NaN
    where ``grad_output`` is NaN, and where ``x`` is NaN the gradient is scaled)."""
    op = BY_NAME["leaky_relu_backward"]
    g, x = _operands(op, (grad_output, x))
    slope = _slope(negative_slope, x.dtype, op, "negative_slope")
    with np.errstate(invalid="ignore"):
        return _select(x > 0, g, _scaled(g, slope))


def threshold(x, /, threshold, value):
    """Threshold: ``x if (x > threshold or x is NaN) else value``. Every dtype.

    ``threshold`` and ``value`` are first cast to ``x``'s dtype (see the module
    docstring: rounded for floats, huge magnitudes to inf; truncated toward
    zero for integers, out of range or not finite a ValueError). Kept elements
    are ``x``'s bits, replaced ones ``value``'s bits (its NaN payload, its sign
    of zero). Nothing is greater than a NaN threshold, so then every non-NaN
    element becomes ``value``; NaN elements are always kept.
    """
    op = BY_NAME["threshold"]
    (x,) = _operands(op, (x,))
    bound = _cast(threshold, x.dtype, op, "threshold")
    replacement = _cast(value, x.dtype, op, "value")
    with np.errstate(invalid="ignore"):
        return _select((x > bound) | np.isnan(x), x, replacement)


def threshold_backward(grad_output, x, /, threshold):
    """Threshold backward: ``grad_output if x > threshold else +0`` (+0 where ``x``
    is NaN, and everywhere for a NaN threshold), ``threshold`` cast to ``x``'s
    dtype as in `threshold`. Every dtype."""
    op = BY_NAME["threshold_backward"]
    g, x = _operands(op, (grad_output, x))
    bound = _cast(threshold, x.dtype, op, "threshold")
    with np.errstate(invalid="ignore"):
        return _select(x > bound, g, _constant(0, x.dtype))


def add_relu(x, residual, /):
    """ReLU of a sum: ``relu(x + residual)``, float dtypes only.

    The IEEE sum in the dtype's precision (float16 converted exactly to
    float32, added in float32 and rounded once to float16, as PyTorch does),
    then `relu`: a NaN sum is kept (the NaN the addition gives), -0.0 and
    negative sums become +0.0, an overflowing sum is inf (and kept) or -inf
    (and 0). Where ``x`` is NaN the result is ``x`` quieted, whatever
    ``residual`` holds (IEEE 754 leaves the NaN of NaN + NaN open; this fixes
    it); else a NaN ``residual`` quieted, else the sum's own NaN (inf - inf).
    No floating-point flag or warning.
    """
    x, r = _operands(BY_NAME["add_relu"], (x, residual))
    with np.errstate(all="ignore"):
        w = np.float32 if x.dtype == np.float16 else x.dtype.type
        xw, rw = x.astype(w), r.astype(w)
        s = np.where(np.isnan(xw), xw + w(0), xw + rw).astype(x.dtype)
        return _select((s > 0) | np.isnan(s), s, _constant(0, x.dtype))


# --- the fused operations (_registry.FUSED) ------------------------------------------------
# Written from their definitions with NumPy's own operations; the bias gradient's
# reference is the float64 sum (fastrelu documents its error bound against it).

def _along(v, axis, ndim):
    """A 1-D ``v`` shaped to broadcast along ``axis`` of an ``ndim``-D array."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(v, shape)


def bias_relu(x, bias, /, axis=-1):
    """``add_relu(x, bias)`` with ``bias[j]`` added along ``axis``."""
    x = np.asarray(x)
    return add_relu(x, np.broadcast_to(_along(np.asarray(bias), axis, x.ndim), x.shape))


def bias_relu_backward(grad_output, y, /, axis=-1):
    """``(relu_backward(grad_output, y), its float64 sum over every axis but axis)``."""
    gx = relu_backward(grad_output, y)
    others = tuple(a for a in range(gx.ndim) if a != axis % gx.ndim)
    with np.errstate(all="ignore"):
        return gx, gx.astype(np.float64).sum(axis=others)


def relu_with_mask(x, /):
    """``(relu(x), np.packbits((x > 0).ravel(order="C"), bitorder="little"))``."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        positive = x > 0
    return relu(x), np.packbits(positive.ravel(order="C"), bitorder="little")


def relu_backward_mask(grad_output, mask, /):
    """``grad_output`` where the mask bit is set, else +0 (a selection)."""
    g = np.asarray(grad_output)
    bits = np.unpackbits(np.asarray(mask), count=g.size, bitorder="little").astype(bool)
    return _select(bits.reshape(g.shape), g, _constant(0, g.dtype))


def relu_with_counts(x, /, axis=-1):
    """``(relu(x), the number of elements > 0 along every axis but axis)``."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        positive = x > 0
    if axis is None:
        return relu(x), np.array(np.count_nonzero(positive), np.int64)
    others = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    return relu(x), np.count_nonzero(positive, axis=others).astype(np.int64)
