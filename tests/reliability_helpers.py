"""Shared pieces of the reliability suite (test_isa_paths, test_leaks, test_huge,
test_fp_state, test_concurrency, test_fuzz and scripts/fuzz.py).

The reference results here are plain NumPy expressions over the *bits* of the
elements (never fastrelu): a float is selected or zeroed by copying its
unsigned-integer view, so NaN payloads and signed zeros are compared exactly.
"""
import numpy as np

DTYPES = tuple(np.dtype(n) for n in (
    "float16", "float32", "float64",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64"))
DTYPE_NAMES = tuple(dt.name for dt in DTYPES)


def native(a):
    """``a`` as an ndarray in native byte order with the same values."""
    a = np.asarray(a)
    if a.dtype.isnative:
        return a
    return a.byteswap().view(a.dtype.newbyteorder("="))


def uview(a):
    """The unsigned-integer view (same width) of native-order ``a``."""
    a = native(a)
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def positive_mask(x):
    """``x > 0`` elementwise (False for NaN and both zeros)."""
    x = native(x)
    with np.errstate(all="ignore"):
        return np.asarray(x > 0)


def ref_relu(x):
    """0 where not (x > 0) and not NaN, else x -- as bits, native order."""
    x = native(x)
    keep = positive_mask(x)
    if x.dtype.kind == "f":
        keep = keep | np.isnan(x)
    bits = np.where(keep, uview(x), 0).astype(f"u{x.dtype.itemsize}")
    return bits.view(x.dtype).reshape(x.shape)


def ref_grad(x):
    x = native(x)
    return positive_mask(x).astype(x.dtype)


def ref_backward(g, x):
    g, x = native(g), native(x)
    bits = np.where(positive_mask(x), uview(g), 0).astype(f"u{x.dtype.itemsize}")
    return bits.view(x.dtype).reshape(x.shape)


def assert_bits(result, expected, what=""):
    """Same type, native dtype, shape and bits (NaN payloads and -0.0 count)."""
    assert isinstance(result, np.ndarray), f"{what}: got {type(result).__name__}"
    expected = native(expected)
    assert result.dtype == expected.dtype, f"{what}: dtype {result.dtype} != {expected.dtype}"
    assert result.shape == expected.shape, f"{what}: shape {result.shape} != {expected.shape}"
    rb, eb = uview(result), uview(expected)
    if not np.array_equal(rb, eb):
        bad = np.flatnonzero(rb.ravel() != eb.ravel())
        i = bad[0]
        raise AssertionError(
            f"{what}: {bad.size} of {rb.size} elements differ; first at flat index {i}: "
            f"got bits {int(rb.ravel()[i]):#x}, expected {int(eb.ravel()[i]):#x}")


def special_bits(dtype):
    """Bit patterns that matter for ``dtype`` (zeros, infinities, NaNs with payloads,
    subnormals, extremes), as unsigned integers of its width."""
    dtype = np.dtype(dtype)
    width = 8 * dtype.itemsize
    top = 1 << (width - 1)
    if dtype.kind == "f":
        nmant = np.finfo(dtype).nmant
        exp = (top - 1) ^ ((1 << nmant) - 1)
        quiet = 1 << (nmant - 1)
        pats = [0, exp, exp | quiet, exp | quiet | 0x5, exp | 1, exp | ((1 << nmant) - 1),
                1, (1 << nmant) - 1, 1 << nmant, exp - 1,
                int(np.array(1, dtype).view(f"u{dtype.itemsize}"))]
        return pats + [p | top for p in pats]
    return [0, 1, 2, top - 1, top, top + 1, (1 << width) - 1, (1 << width) - 2]


def random_bits(rng, dtype, n):
    """``n`` elements of ``dtype`` with arbitrary bit patterns, small values and
    the special patterns mixed in (about half negative for signed types)."""
    dtype = np.dtype(dtype)
    ut = np.dtype(f"u{dtype.itemsize}")
    raw = rng.integers(0, np.iinfo(ut).max, size=n, dtype=ut, endpoint=True)
    a = raw.view(dtype).copy()
    if n:
        if dtype.kind == "f":
            small = (rng.standard_normal(n) * 4).astype(dtype)
        else:
            lo = -3 if dtype.kind == "i" else 0
            small = rng.integers(lo, 4, size=n).astype(dtype)
        pick = rng.random(n) < 0.4
        a[pick] = small[pick]
        sp = np.array(special_bits(dtype), dtype=ut).view(dtype)
        k = max(1, n // 6)
        a[rng.integers(0, n, size=k)] = sp[rng.integers(0, sp.size, size=k)]
    return a
