"""An independent reference for fastrelu, in plain NumPy (never calls fastrelu).

Semantics, written out:

* ``relu(x)``: ``0 if x <= 0 else x`` elementwise. For floats, NaN compares
  False, so NaN is kept *with its payload bits*; -0.0 and -inf become +0.0;
  +inf and subnormals are kept. Integers: ``max(x, 0)``; unsigned: a copy.
* ``relu_grad(x)``: 1 where ``x > 0``, else 0 (0 at exactly 0 and at NaN).
* ``relu_backward(g, x)``: ``g`` where ``x > 0``, else +0 -- a selection, so
  masked lanes are exactly +0 even where ``g`` is inf or NaN.

Results are in the input's type, in native byte order. Every function works by
copying bits (``copy``, boolean-mask assignment), never by arithmetic, so NaN
payloads and signs survive exactly.

Also here: `assert_same` (bit-exact comparison) and the layout generator
`layouts` / `make_layout`.
"""
import numpy as np

FLOAT_DTYPES = tuple(map(np.dtype, ["float16", "float32", "float64"]))
SINT_DTYPES = tuple(map(np.dtype, ["int8", "int16", "int32", "int64"]))
UINT_DTYPES = tuple(map(np.dtype, ["uint8", "uint16", "uint32", "uint64"]))
INT_DTYPES = SINT_DTYPES + UINT_DTYPES
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES
#: The dtype names, for pytest parameters (readable test ids).
DTYPE_NAMES = tuple(dt.name for dt in ALL_DTYPES)


# --- helpers ------------------------------------------------------------------

def native_dtype(dtype):
    """``dtype`` in native byte order."""
    return np.dtype(dtype).newbyteorder("=")


def to_native(a):
    """``a`` as an ndarray in native byte order, with the same bits (byteswapped if needed)."""
    a = np.asarray(a)
    if a.dtype.isnative:
        return a
    return a.byteswap().view(native_dtype(a.dtype))


def uint_dtype(dtype):
    """The unsigned integer dtype with the itemsize of ``dtype``."""
    return np.dtype(f"u{np.dtype(dtype).itemsize}")


def bits(a):
    """The raw bits of ``a`` (native order) as unsigned integers of the same width."""
    a = to_native(a)
    return a.view(uint_dtype(a.dtype))


def from_bits(values, dtype):
    """An array of ``dtype`` whose elements have the given raw bit patterns."""
    dtype = native_dtype(dtype)
    return np.array(values, dtype=uint_dtype(dtype)).view(dtype)


def snapshot(a):
    """A bit-exact copy of ``a`` (same dtype, byte order and values) to compare with later."""
    return np.array(a, copy=True)


# --- the oracle ---------------------------------------------------------------

def _prepare(x):
    x = to_native(np.asarray(x))
    if x.dtype not in ALL_DTYPES:
        raise TypeError(f"oracle: unsupported dtype {x.dtype}")
    return x


def relu(x):
    """``0 if x <= 0 else x`` elementwise; NaN (with payload) kept, -0.0 -> +0.0."""
    x = _prepare(x)
    out = np.array(x, copy=True)          # bits of x, NaN payloads included
    if x.dtype.kind in "fi":              # unsigned: nothing is <= 0 except 0 itself
        with np.errstate(all="ignore"):   # ordered compares may flag invalid on NaN
            mask = x <= 0                 # False at NaN: NaN is kept
        out[mask] = 0                     # +0 bits: also replaces -0.0 and -inf
    return out


def relu_grad(x):
    """1 where ``x > 0``, else 0 (0 at 0 and at NaN), in x's dtype."""
    x = _prepare(x)
    with np.errstate(all="ignore"):
        mask = x > 0
    out = np.zeros(x.shape, dtype=x.dtype)
    out[mask] = 1
    return out


def relu_backward(grad_output, x):
    """``grad_output`` where ``x > 0``, else +0 (a selection: inf/NaN gradients masked)."""
    g = _prepare(grad_output)
    x = _prepare(x)
    assert g.dtype == x.dtype and g.shape == x.shape
    with np.errstate(all="ignore"):
        mask = x > 0
    out = np.zeros(x.shape, dtype=x.dtype)   # +0 bits everywhere
    out[mask] = g[mask]                      # copies the bits of g
    return out


# --- bit-exact comparison ------------------------------------------------------

def _describe(a, idx):
    a = to_native(a)
    return f"{a[idx]!r} (bits 0x{int(bits(a)[idx]):0{2 * a.dtype.itemsize}x})"


def assert_same(result, expected):
    """``result`` is an ndarray of exactly ``expected``'s dtype and shape with the same bits.

    The bits are compared in native byte order, so NaN payloads and the sign of
    zero count; the dtype check includes the byte order.
    """
    assert type(result) is np.ndarray, f"result is a {type(result).__name__}, not an ndarray"
    assert type(expected) is np.ndarray
    assert result.dtype == expected.dtype, f"dtype {result.dtype} != expected {expected.dtype}"
    assert result.shape == expected.shape, f"shape {result.shape} != expected {expected.shape}"
    rb, eb = bits(result), bits(expected)
    if not np.array_equal(rb, eb):
        bad = np.argwhere(rb != eb)
        lines = [f"{len(bad)} of {result.size} elements differ; first ones:"]
        for idx in map(tuple, bad[:5]):
            lines.append(f"  at {idx}: got {_describe(result, idx)}, "
                         f"expected {_describe(expected, idx)}")
        raise AssertionError("\n".join(lines))


# --- layouts -------------------------------------------------------------------

def _fill(base, shape):
    """An array of ``shape`` holding ``base``'s elements, repeated as needed (bits kept)."""
    base = to_native(base)
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=base.dtype)
    if base.size == 0:
        base = np.zeros(1, dtype=base.dtype)
    return np.resize(base.ravel(), shape)


def _unaligned(a):
    """A copy of ``a`` placed at byte offset 1 of a uint8 buffer (not aligned)."""
    a = np.asarray(a)
    buf = np.zeros(a.size * a.dtype.itemsize + 1, dtype=np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    return u


def _readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _rows(n, cols=3):
    return n // cols


# name -> (function of a 1-D native ``base`` of n elements, applies to itemsize 1?)
_LAYOUTS = {
    # contiguous, 1-D, exactly base
    "C": (lambda b: np.array(b, copy=True), True),
    # C-contiguous 2-D and Fortran 2-D (only F-contiguous)
    "C-2d": (lambda b: _fill(b, (_rows(b.size), 3)), True),
    "F-2d": (lambda b: np.asfortranarray(_fill(b, (_rows(b.size), 3))), True),
    # every other element of a buffer twice as long
    "step2": (lambda b: _fill(b, (2 * b.size,))[::2], True),
    # step 3 with an offset
    "step3-offset": (lambda b: _fill(b, (3 * b.size + 1,))[1::3], True),
    # negative stride
    "reversed": (lambda b: np.array(b, copy=True)[::-1], True),
    # transposed C array (F-contiguous) and a permuted 3-D array (neither C nor F)
    "transposed": (lambda b: _fill(b, (3, _rows(b.size))).T, True),
    "permuted-3d": (lambda b: _fill(b, (2, 3, max(b.size // 6, 1))).transpose(1, 2, 0), True),
    # 0-d
    "0-d": (lambda b: _fill(b, ()), True),
    # empty
    "empty": (lambda b: np.empty((0,), dtype=b.dtype), True),
    "empty-2d": (lambda b: np.empty((3, 0), dtype=b.dtype), True),
    # a view into a uint8 buffer at byte offset 1
    "unaligned": (lambda b: _unaligned(b), False),
    "unaligned-2d-strided": (lambda b: _unaligned(_fill(b, (_rows(b.size), 6)))[:, ::2], False),
    # non-native byte order
    "byteswapped": (lambda b: b.byteswap().view(b.dtype.newbyteorder()), False),
    "byteswapped-step2": (lambda b: _fill(b, (2 * b.size,)).byteswap()
                          .view(b.dtype.newbyteorder())[::2], False),
    # read-only contiguous
    "readonly": (lambda b: _readonly(b), True),
    # np.broadcast_to: stride 0, read-only
    "broadcast-row": (lambda b: np.broadcast_to(b, (3, b.size)), True),
    "broadcast-scalar": (lambda b: np.broadcast_to(_fill(b, (1,)), (b.size,)), True),
    # non-contiguous slices of 3-D arrays
    "slices-3d": (lambda b: _fill(b, (4, 5, 2 * max(b.size // 10, 1) + 1))[::2, 1:4, ::-2], True),
    "slices-3d-inner": (lambda b: _fill(b, (3, 4, max(b.size // 6, 1) + 2))[1:, ::3, 1:-1], True),
}

LAYOUT_NAMES = tuple(_LAYOUTS)
#: Layouts that cannot be written to (relu_ must refuse them, out=x is impossible).
READONLY_LAYOUTS = frozenset({"readonly", "broadcast-row", "broadcast-scalar"})
WRITEABLE_LAYOUTS = tuple(n for n in LAYOUT_NAMES if n not in READONLY_LAYOUTS)


def layout_applies(name, dtype):
    """Whether layout ``name`` differs from plain C for ``dtype`` (byte order, alignment)."""
    return np.dtype(dtype).itemsize > 1 or _LAYOUTS[name][1]


def make_layout(name, base):
    """The elements of 1-D ``base`` (roughly) in layout ``name``."""
    base = to_native(np.asarray(base))
    assert base.ndim == 1
    a = _LAYOUTS[name][0](base)
    if name.startswith("unaligned") and a.size:
        assert not a.flags.aligned
    if name in READONLY_LAYOUTS:
        assert not a.flags.writeable
    return a


def layouts(base):
    """Yield ``(name, array)`` for every layout of ``base`` that applies to its dtype."""
    for name in LAYOUT_NAMES:
        if layout_applies(name, base.dtype):
            yield name, make_layout(name, base)


def layout_params(dtypes=DTYPE_NAMES, names=LAYOUT_NAMES):
    """``(dtype name, layout)`` pairs for pytest.mark.parametrize, inapplicable ones left out."""
    return [(np.dtype(dt).name, name) for dt in dtypes for name in names
            if layout_applies(name, dt)]


# --- the same values in another layout -----------------------------------------

RELAYOUT_KINDS = ("C", "F", "strided", "reversed", "byteswapped", "unaligned", "readonly")


def relayout(kind, a):
    """A new array with ``a``'s shape and values (bits) in layout ``kind``."""
    a = to_native(a)
    if kind == "C":
        return np.array(a, order="C", copy=True)
    if kind == "F":
        return np.array(a, order="F", copy=True)
    if kind == "strided":
        if a.ndim == 0:
            return np.array(a, copy=True)
        parent = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        view = parent[..., 1::2]
        view[...] = a
        return view
    if kind == "reversed":
        if a.ndim == 0:
            return np.array(a, copy=True)
        idx = (slice(None, None, -1),) * a.ndim
        return np.array(a[idx], copy=True)[idx]
    if kind == "byteswapped":
        return a.byteswap().view(a.dtype.newbyteorder())
    if kind == "unaligned":
        return _unaligned(a)
    if kind == "readonly":
        return _readonly(a)
    raise ValueError(kind)


# --- out arrays ----------------------------------------------------------------

OUT_KINDS = ("fresh", "fresh-F", "strided", "byteswapped", "unaligned")


def make_out(kind, shape, dtype, fill):
    """An output array of ``kind`` for a result of ``shape`` and ``dtype``, filled with
    ``fill``; returns ``(out, untouched)`` where ``untouched()`` asserts that memory
    around ``out`` (in its parent buffer) was not written."""
    dtype = native_dtype(dtype)
    itemsize = dtype.itemsize
    nothing = (lambda: None)
    if kind == "fresh":
        return np.full(shape, fill, dtype=dtype), nothing
    if kind == "fresh-F":
        return np.full(shape, fill, dtype=dtype, order="F"), nothing
    if kind == "byteswapped":
        out = np.full(shape, fill, dtype=dtype.newbyteorder())
        return out, nothing
    if kind == "unaligned":
        n = int(np.prod(shape))
        buf = np.full(n * itemsize + 2, 0xA5, dtype=np.uint8)
        out = buf[1:-1].view(dtype).reshape(shape)
        out[...] = fill

        def untouched():
            assert buf[0] == 0xA5 and buf[-1] == 0xA5
        return out, untouched
    if kind == "strided":
        if len(shape) == 0:
            parent = np.full((2,), fill, dtype=dtype)
            out = parent[0, ...]
            gaps = parent[1:]
        else:
            parent = np.full(shape[:-1] + (2 * shape[-1] + 1,), fill, dtype=dtype)
            out = parent[..., 1::2]
            gaps = parent[..., ::2]
        gaps[...] = 77
        expected_gaps = np.array(gaps, copy=True)

        def untouched():
            assert_same(np.array(gaps), expected_gaps)
        return out, untouched
    raise ValueError(kind)
