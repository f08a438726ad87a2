"""The fused operations of the registry (``_registry.FUSED``): ReLU with its
neighbours in one pass over memory.

Each public function validates every argument first (NumPy's exception
types, nothing written before), brings the arrays to the engine's form --
C-contiguous, aligned, native byte order, a copy only where the input is not
already so -- and describes the axis as ``(outer, n, inner)``: the array seen
as ``outer`` blocks of ``n`` stretches of ``inner`` elements, stretch ``j``
belonging to element ``j`` of the bias or of the counts. The engine
(``_engine``, "fused operations") runs the registry's elementwise loop tile
by tile with the kernel of ``_fused.h`` that does the rest on the same tile.

Layouts the engine takes (all decided from the shape alone, so results never
depend on the thread count or the instruction-set level):

* *rows* (``inner`` < `SEGMENT_MIN`): the array is rows of ``period``
  elements, element ``i`` belonging to column ``i % period``; the bias (or a
  count or sum slot) is repeated to a period of at least `PERIOD_MIN`
  elements so that every loop call is long, and folded back at the end;
* *segments* (``inner`` >= `SEGMENT_MIN`): runs of ``inner`` elements, each
  belonging to one ``j``.
"""
import math
import operator

import numpy as np
from numpy.exceptions import AxisError
from numpy.lib.array_utils import normalize_axis_index

from fastrelu import _docs, _engine, _functions, _memory
from fastrelu._general import (_SUPPORTED, _as_array, _check_out, _dtype_mismatch,
                               _shape_mismatch, _same_type)
from fastrelu._registry import FUSED_BY_NAME, FUSED_NAMES

__all__ = list(FUSED_NAMES)

#: Stretches of at least this many elements run as segments (shorter ones are
#: folded into rows: a loop call per stretch of 2 would cost more than it does).
SEGMENT_MIN = 64
#: The shortest period of the row layout (elements); shorter ones are repeated.
PERIOD_MIN = 1024
#: Bias gradients: at most this many row blocks of partial sums, each summed
#: in order; a block has at least `BLOCK_ROWS_MIN` rows.
MAX_BLOCKS = 64
BLOCK_ROWS_MIN = 16
#: Bias gradients, row layout: columns per task (a thread's share of a block).
COLUMN_WIDTH = 4096
#: Bias gradients, segment layout: the lanes each segment is summed in (_fused.h).
LANES = 16


def chain_length(shape, axis):
    """The most additions any element of ``bias_relu_backward``'s ``grad_bias``
    goes through (its error bound is ``chain_length * u * sum(|grad_x|)``):
    the rows of a block, the blocks, then the folds of the row layout or the
    16 lanes and their tree of a segment."""
    outer, n, inner = _split(tuple(shape), axis)
    size = outer * n * inner
    if inner >= SEGMENT_MIN:
        rows, fold = outer, -(-inner // 16) + 4
    else:
        period, copies = _rows(n, inner)
        rows, fold = -(-size // period), copies + inner
    per_block = max(BLOCK_ROWS_MIN, -(-rows // MAX_BLOCKS))
    return per_block + -(-rows // per_block) + fold


# --- arguments ------------------------------------------------------------------------

def _operand(a, func, name, dtypes):
    """``a`` as an ndarray of a supported dtype (masked arrays refused: the fused
    operations have no mask rules)."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{func}() does not take a masked array as {name}; pass "
                        f"{name}.filled(...) or use the elementwise functions, which "
                        f"keep masks")
    return np.asarray(_as_array(a, func, name, _SUPPORTED[dtypes]))


def _engine_form(a):
    """``a`` C-contiguous, aligned and in native byte order (a copy if not)."""
    return np.require(a, dtype=a.dtype.newbyteorder("="), requirements=("C", "A"))


def _same(func, first, a, second, b):
    """Raise unless a and b share one dtype (up to byte order) and one shape."""
    if not _same_type(b.dtype, a.dtype.newbyteorder("=")):
        raise _dtype_mismatch(func, first, a.dtype, second, b.dtype)
    if a.shape != b.shape:
        raise _shape_mismatch(func, first, a.shape, second, b.shape)


def _axis(func, axis, ndim):
    """``axis`` normalized for an array of ``ndim`` dimensions (AxisError)."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{func}(): axis must be an integer or None, not "
                        f"{type(axis).__name__}") from None
    try:
        return normalize_axis_index(axis, ndim)
    except AxisError:
        raise AxisError(axis, ndim, f"{func}()") from None


def _split(shape, axis):
    """(outer, n, inner) of ``shape`` around ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _check_no_self_overlap(func, name, a):
    """ValueError for a target whose elements share memory (a stride-0 view such
    as np.broadcast_arrays gives, or as_strided): writing it would keep only the
    last result of each shared slot. Dimensions sorted by stride must each step
    past the whole of the previous ones (a sufficient test)."""
    extent = a.itemsize
    for stride, size in sorted((abs(st), n) for st, n in zip(a.strides, a.shape) if n > 1):
        if stride < extent:
            raise ValueError(f"{func}(): {name} has elements that share memory (a stride-0 "
                             f"or overlapping view); pass an array that owns its elements, "
                             f"e.g. {name}.copy()")
        extent = stride * (size - 1) + extent
    return a


def _direct(out, inputs):
    """``out`` can be written by the engine: C-contiguous, aligned, native, and
    either exactly an input's memory or apart from every input."""
    if not (out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative
            and type(out) is np.ndarray):
        return False
    start = out.__array_interface__["data"][0]
    return all(a.__array_interface__["data"][0] == start and a.nbytes == out.nbytes
               and a.flags.c_contiguous or not np.shares_memory(a, out) for a in inputs)


def _target(out, like, inputs):
    """Where the engine writes the result: ``out`` itself, else a new array
    (copied into ``out`` afterwards by `_deliver`)."""
    if out is not None and _direct(out, inputs):
        return out
    return _memory.empty_like(like, like.dtype)


def _deliver(result, out):
    if out is None or out is result:
        return result
    np.copyto(out, result)
    return out


# --- layouts -----------------------------------------------------------------------------

def _rows(n, inner):
    """The row layout of stretches of ``inner`` elements (< SEGMENT_MIN) over
    ``n`` slots: (period, repeats of the n * inner columns in a period)."""
    columns = max(1, n * inner)
    copies = max(1, -(-PERIOD_MIN // columns))
    return columns * copies, copies


def _bias_layout(bias, n, inner):
    """(bias as the engine reads it, period, repeat) for ``bias_add_relu``."""
    if inner >= SEGMENT_MIN:
        return bias, n, inner
    period, copies = _rows(n, inner)
    return np.tile(np.repeat(bias, inner), copies), period, 1


def _fold(values, n, inner, copies, total):
    """Fold the per-column values of the row layout back to ``n`` slots with
    ``total`` (a sequential sum: cumulative, last)."""
    values = values.reshape(copies, n * inner)
    values = total(values, 0) if copies > 1 else values[0]
    values = values.reshape(n, inner)
    return total(values, 1) if inner > 1 else values[:, 0]


def _ordered_sum(values, axis):
    """The sum along ``axis`` of a 2-D float array, added strictly in order
    (fixed by the shape, unlike NumPy's pairwise sums)."""
    rows = values if axis == 0 else values.T
    return _engine.sum_rows_in_order(np.array(rows, order="C"))


def _integer_sum(values, axis):
    return values.sum(axis=axis)


# --- the operations ------------------------------------------------------------------------

def add_relu_(x, residual, /):
    func, spec = "add_relu_", FUSED_BY_NAME["add_relu_"]
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{func}() works in place on a numpy.ndarray, not "
                        f"{type(x).__name__}; use add_relu() for other array-likes")
    _as_array(x, func, "x", _SUPPORTED[spec.dtypes])
    if not _engine.writeable(x):
        raise ValueError(f"{func}(): x is read-only")
    _check_no_self_overlap(func, "x", x)
    # add_relu's own checks (dtype, shape; no broadcasting), then out=x: the
    # fast path, or NumPy's ufunc machinery for views and overlapping residuals
    return _functions.add_relu(x, residual, out=x)


def _bias_relu(func, x, bias, axis, out, inplace):
    spec = FUSED_BY_NAME["bias_relu"]
    if inplace and not isinstance(x, np.ndarray):
        raise TypeError(f"{func}() works in place on a numpy.ndarray, not "
                        f"{type(x).__name__}; use bias_relu() for other array-likes")
    xa = _operand(x, func, "x", spec.dtypes)
    if not inplace:
        x = xa
    b = _operand(bias, func, "bias", spec.dtypes)
    if not _same_type(b.dtype, x.dtype.newbyteorder("=")):
        raise _dtype_mismatch(func, "x", x.dtype, "bias", b.dtype)
    axis = _axis(func, axis, x.ndim)
    outer, n, inner = _split(x.shape, axis)
    if b.shape != (n,):
        raise ValueError(f"{func}(): bias has shape {b.shape}; expected ({n},), the "
                         f"length of x along axis {axis}")
    dtype = x.dtype.newbyteorder("=")
    if inplace:
        if not _engine.writeable(x):
            raise ValueError(f"{func}(): x is read-only")
        out = _check_no_self_overlap(func, "x", x)
    elif out is not None:
        _check_out(out, x.shape, dtype, func)
        _check_no_self_overlap(func, "out", out)
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, dtype)
    xc = _engine_form(xa)
    b = _engine_form(b)
    target = _target(out, xc, [xc])
    if np.shares_memory(b, target):
        b = b.copy()
    b, period, repeat = _bias_layout(b, n, inner)
    _engine.bias_add_relu(xc, b, target, period, repeat)
    return _deliver(target, out)


def bias_relu(x, bias, /, axis=-1, out=None):
    return _bias_relu("bias_relu", x, bias, axis, out, False)


def bias_relu_(x, bias, /, axis=-1):
    return _bias_relu("bias_relu_", x, bias, axis, None, True)


def bias_relu_backward(grad_output, y, /, axis=-1, out=None):
    func, spec = "bias_relu_backward", FUSED_BY_NAME["bias_relu_backward"]
    g = _operand(grad_output, func, "grad_output", spec.dtypes)
    y = _operand(y, func, "y", spec.dtypes)
    _same(func, "grad_output", g, "y", y)
    axis = _axis(func, axis, y.ndim)
    outer, n, inner = _split(y.shape, axis)
    dtype = y.dtype.newbyteorder("=")
    if out is not None:
        _check_out(out, y.shape, dtype, func)
        _check_no_self_overlap(func, "out", out)
    accumulator = np.float64 if dtype == np.float64 else np.float32
    if y.size == 0:
        gx = out if out is not None else np.empty(y.shape, dtype)
        return gx, np.zeros(n, accumulator).astype(dtype)
    gc, yc = _engine_form(g), _engine_form(y)
    target = _target(out, yc, [gc, yc])
    if inner >= SEGMENT_MIN:
        period, repeat, copies = n, inner, 1
        rows = outer
        width = max(1, COLUMN_WIDTH // inner)
    else:
        (period, copies), repeat = _rows(n, inner), 1
        rows = -(-y.size // period)
        width = COLUMN_WIDTH
    per_block = max(BLOCK_ROWS_MIN, -(-rows // MAX_BLOCKS))
    blocks = -(-rows // per_block)
    lanes = () if repeat == 1 else (LANES,)
    partial = np.zeros((blocks, period, *lanes), accumulator)
    _engine.bias_relu_backward(gc, yc, target, partial, period, repeat, per_block, width)
    with np.errstate(all="ignore"):      # inf and NaN gradients sum as IEEE says, silently
        if repeat > 1:                   # each segment's 16 lanes, in a fixed tree
            width = LANES // 2
            while width:
                partial[..., :width] += partial[..., width:2 * width]
                width //= 2
            partial = partial[..., 0]
        sums = _ordered_sum(partial, 0) if len(partial) > 1 else partial[0]
        if repeat == 1:
            sums = _fold(sums, n, inner, copies, _ordered_sum)
        sums = sums.astype(dtype)
    # IEEE 754 leaves the NaN of NaN + NaN open (and vector adds swap operands):
    # a NaN sum is the default NaN, so that NaNs have the same bits too
    sums[np.isnan(sums)] = np.nan
    return _deliver(target, out), sums


def relu_with_mask(x, /, out=None):
    func, spec = "relu_with_mask", FUSED_BY_NAME["relu_with_mask"]
    x = _operand(x, func, "x", spec.dtypes)
    dtype = x.dtype.newbyteorder("=")
    if out is not None:
        _check_out(out, x.shape, dtype, func)
        _check_no_self_overlap(func, "out", out)
    mask = np.empty(-(-x.size // 8), np.uint8)
    if x.size == 0:
        return (out if out is not None else np.empty(x.shape, dtype)), mask
    xc = _engine_form(x)
    target = _target(out, xc, [xc])
    _engine.relu_with_mask(xc, target, mask)
    return _deliver(target, out), mask


def relu_backward_mask(grad_output, mask, /, out=None):
    func, spec = "relu_backward_mask", FUSED_BY_NAME["relu_backward_mask"]
    g = _operand(grad_output, func, "grad_output", spec.dtypes)
    if isinstance(mask, np.ma.MaskedArray):
        raise TypeError(f"{func}() does not take a masked array as mask")
    m = np.asarray(mask)
    if m.dtype != np.uint8:
        raise TypeError(f"{func}(): mask has dtype {m.dtype}; expected uint8, the packed "
                        f"bits that relu_with_mask returns")
    if m.size != -(-g.size // 8):
        raise ValueError(f"{func}(): grad_output has {g.size} elements, which need a mask "
                         f"of {-(-g.size // 8)} bytes, but mask has {m.size}")
    dtype = g.dtype.newbyteorder("=")
    if out is not None:
        _check_out(out, g.shape, dtype, func)
        _check_no_self_overlap(func, "out", out)
    if g.size == 0:
        return out if out is not None else np.empty(g.shape, dtype)
    gc = _engine_form(g)
    m = np.ascontiguousarray(m).reshape(-1)
    target = _target(out, gc, [gc, m])
    _engine.relu_backward_mask(gc, m, target)
    return _deliver(target, out)


def relu_with_counts(x, /, axis=-1, out=None):
    func, spec = "relu_with_counts", FUSED_BY_NAME["relu_with_counts"]
    x = _operand(x, func, "x", spec.dtypes)
    dtype = x.dtype.newbyteorder("=")
    if axis is not None:
        axis = _axis(func, axis, x.ndim)
        outer, n, inner = _split(x.shape, axis)
    else:
        outer, n, inner = 1, 1, x.size
    if out is not None:
        _check_out(out, x.shape, dtype, func)
        _check_no_self_overlap(func, "out", out)
    if x.size == 0:
        y = out if out is not None else np.empty(x.shape, dtype)
        return y, (np.zeros(n, np.int64) if axis is not None else np.zeros((), np.int64))
    xc = _engine_form(x)
    target = _target(out, xc, [xc])
    if inner >= SEGMENT_MIN or axis is None:
        counts = np.zeros(n, np.int64)
        _engine.relu_with_counts(xc, target, counts, n, inner)
    else:
        period, copies = _rows(n, inner)
        counts = np.zeros(period, np.int64)
        _engine.relu_with_counts(xc, target, counts, period, 1)
        counts = _fold(counts, n, inner, copies, _integer_sum)
    return _deliver(target, out), (counts if axis is not None else counts.reshape(()))


_docs.attach(globals(), __all__)
