"""The one set of test helpers, shared by every suite, tests/fuzz_harness.py,
scripts/fuzz.py (through the harness) and scripts/valgrind_smoke.py.

* The registry: the operations (`OPS`), their dtypes (``op.dtype_names``) and
  pytest parameters over them (`op_dtype_params`), the call modes that apply
  to an operation (`modes`), parameter values per parameter kind
  (`param_sets`), and one way to call an operation with generated arguments:
  `call`, `call_inplace`, `call_ufunc` and `expected` (the reference,
  ``fastrelu._reference``); `make_inputs` (random operands in a layout) and
  `threaded_size` (a size the threads split whatever the address).
* Bits: `assert_same` (the one bit-exact comparison), `bits`, `from_bits`,
  `snapshot`, `to_native`.
* Arrays: `readonly`, `byteswapped`, `unaligned`; the layout generator
  (`make_layout`, `layout_params`, `relayout`) and output kinds (`make_out`).
* Values: special values per dtype and seeded random arrays with about half
  negatives and the special values mixed in (`random_values`); the fixtures
  built on them are in conftest.py.

Imports only NumPy and fastrelu (no pytest, no Hypothesis), so the scripts can
use it too.
"""
import math

import numpy as np

import fastrelu
from fastrelu import _reference, ufuncs
from fastrelu._registry import DTYPE_SETS, OPS

# --- the registry ------------------------------------------------------------------------

#: Every dtype some operation supports, and the float ones.
ALL_DTYPE_NAMES = DTYPE_SETS["all"]
FLOAT_DTYPE_NAMES = DTYPE_SETS["float"]
INT_DTYPE_NAMES = tuple(n for n in ALL_DTYPE_NAMES if n not in FLOAT_DTYPE_NAMES)
OP_NAMES = tuple(op.name for op in OPS)
INPLACE_OPS = tuple(op for op in OPS if op.inplace)
UNARY_OPS = tuple(op for op in OPS if op.arity == 1)
BINARY_OPS = tuple(op for op in OPS if op.arity == 2)


def op_id(value):
    """pytest id of an Op (its name); None for other values (pytest's default)."""
    return value.name if hasattr(value, "arity") else None


def op_dtype_params(ops=OPS, dtypes=None):
    """``(op, dtype name)`` for every operation and every dtype it supports
    (``op.dtype_names``), only those in ``dtypes`` if given: for parametrize
    with ``ids=op_id``."""
    return [(op, dt) for op in ops for dt in op.dtype_names if dtypes is None or dt in dtypes]


def function(op):
    return getattr(fastrelu, op.name)


def inplace_function(op):
    return getattr(fastrelu, op.inplace_name)


def modes(op):
    """How ``op`` can be called: ``"new"`` (a fresh result), ``"out"`` (a separate
    ``out``), ``"out=<input>"`` (``out`` is that input) and, with an in-place
    twin, ``"inplace"``."""
    return (("new", "out") + tuple(f"out={name}" for name in op.inputs)
            + (("inplace",) if op.inplace else ()))


def writes_input(mode):
    """The mode writes into an input (so the inputs must be writeable)."""
    return mode == "inplace" or mode.startswith("out=")


# --- parameters ------------------------------------------------------------------------------

NAN = math.nan

#: Generated parameter values: kind -> dtype kind -> values. Bounds include a
#: negative one, -0.0 and NaN for floats; integers stay within int8 and
#: (unsigned) uint8, so that every integer dtype takes them.
PARAM_VALUES = {
    "slope": {"f": (0.01, 0.5, 0.0, -0.5, 3.0, 1e-30)},
    "bound": {"f": (-2.0, 0.5, -0.0, NAN, 1.0, 6.0),
              "i": (1, -2, 0, 5, -100, 100),
              "u": (1, 0, 5, 200, 2, 100)},
    "value": {"f": (0.5, -3.0, 6.0, -0.0, NAN, 7.25),
              "i": (-3, 7, 0, 6, 100, -100),
              "u": (9, 2, 0, 255, 6, 1)},
}


def param_sets(op, dtype):
    """Parameter tuples (in ``op.params`` order) to call ``op`` with on ``dtype``
    data: the i-th tuple takes the i-th generated value of each parameter's
    kind. ``[()]`` for an operation without parameters."""
    if not op.params:
        return [()]
    kind = np.dtype(dtype).kind
    lists = [PARAM_VALUES[p.kind][kind] for p in op.params]
    return [tuple(values[i % len(values)] for values in lists)
            for i in range(max(map(len, lists)))]


def param_cycle(op, dtype, count):
    """``count`` parameter tuples, cycling through `param_sets`."""
    sets = param_sets(op, dtype)
    return [sets[i % len(sets)] for i in range(count)]


def param_operand(op, index, value, dtype):
    """Parameter ``index`` of ``op`` as the extra ufunc operand for ``dtype`` data:
    a slope as float32 (float64 for float64 data), a bound or value as a 0-d
    array of the data's dtype (native)."""
    dtype = native_dtype(dtype)
    if op.params[index].kind == "slope":
        return np.array(value, np.float64 if dtype == np.float64 else np.float32)
    with np.errstate(all="ignore"):
        return np.array(value).astype(dtype)


# --- calling an operation --------------------------------------------------------------------

_NO_OUT = object()


def call(op, arrays, params=(), out=_NO_OUT, keywords=False):
    """The public function of ``op`` on ``arrays`` (``op.inputs``, grad_output
    first); the parameters positionally or, with ``keywords``, by name."""
    kwargs = {} if out is _NO_OUT else {"out": out}
    if keywords:
        kwargs.update((p.name, v) for p, v in zip(op.params, params))
        params = ()
    return function(op)(*arrays, *params, **kwargs)


def call_inplace(op, x, params=()):
    """The in-place twin of ``op`` on ``x``."""
    return inplace_function(op)(x, *params)


def call_ufunc(op, arrays, params=(), **kwargs):
    """The NumPy ufunc of ``op``, the parameters as extra operands (`param_operand`)."""
    dtype = np.asarray(arrays[-1]).dtype
    extra = [param_operand(op, i, v, dtype) for i, v in enumerate(params)]
    return getattr(ufuncs, op.name)(*arrays, *extra, **kwargs)


def expected(op, arrays, params=()):
    """The reference result (``fastrelu._reference``): a fresh native array."""
    return getattr(_reference, op.name)(*arrays, *params)


def reference_error(op, arrays, params=()):
    """The exception type the reference raises for this call (None: it succeeds)."""
    try:
        expected(op, arrays, params)
    except (TypeError, ValueError) as e:
        return type(e)
    return None


#: Thread chunks are at least 64 KiB (fastrelu/_engine.pyx, CHUNK_MIN_BYTES; the
#: engine does not report it) and start on multiples of their size in the
#: output's address space: with the parallel threshold at its minimum, an
#: output of more than two chunks is split between the threads whatever its
#: address.
CHUNK_MIN_BYTES = 1 << 16


def threaded_size(dtype, chunks=2):
    """A number of elements of ``dtype`` whose output spans more than ``chunks``
    minimal thread chunks (plus an odd tail)."""
    return chunks * CHUNK_MIN_BYTES // np.dtype(dtype).itemsize + 13


def make_inputs(op, values, dtype, n, layout="C"):
    """The operands of ``op`` (``op.inputs``, grad_output first): independent
    random arrays of ``n`` elements of ``dtype`` from ``values(dtype, n)`` (the
    conftest fixture), each in ``layout`` (`make_layout`)."""
    return tuple(make_layout(layout, values(dtype, n)) for _ in op.inputs)


# --- bits ------------------------------------------------------------------------------------

def native_dtype(dtype):
    """``dtype`` in native byte order."""
    return np.dtype(dtype).newbyteorder("=")


def to_native(a):
    """``a`` as an ndarray in native byte order, with the same values."""
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


def _describe(a, idx):
    return f"{a[idx]!r} (bits 0x{int(bits(a)[idx]):0{2 * a.dtype.itemsize}x})"


def assert_same(result, expected, what=""):
    """``result`` is an ndarray with exactly ``expected``'s dtype (byte order
    included) and shape, and the same bits: NaN payloads and the sign of zero
    count. Compare a result in another byte order through `to_native`."""
    what = f"{what}: " if what else ""
    assert type(result) is np.ndarray, f"{what}result is a {type(result).__name__}"
    assert type(expected) is np.ndarray
    assert result.dtype == expected.dtype, f"{what}dtype {result.dtype} != {expected.dtype}"
    assert result.shape == expected.shape, f"{what}shape {result.shape} != {expected.shape}"
    rb, eb = bits(result), bits(expected)
    if not np.array_equal(rb, eb):
        bad = np.argwhere(rb != eb)
        lines = [f"{what}{len(bad)} of {result.size} elements differ; first ones:"]
        r, e = to_native(result), to_native(expected)
        for idx in map(tuple, bad[:5]):
            lines.append(f"  at {idx}: got {_describe(r, idx)}, expected {_describe(e, idx)}")
        raise AssertionError("\n".join(lines))


# --- arrays: read-only, byte order, alignment -------------------------------------------------

def readonly(a):
    """A read-only copy of ``a``."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def byteswapped(a):
    """``a``'s values in the other byte order (a new array)."""
    a = np.asarray(a)
    return a.byteswap().view(a.dtype.newbyteorder())


def unaligned(a):
    """A copy of ``a`` at byte offset 1 of a uint8 buffer (not aligned for itemsize > 1)."""
    a = np.asarray(a)
    buf = np.zeros(a.size * a.dtype.itemsize + 1, dtype=np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    return u


# --- layouts ---------------------------------------------------------------------------------

def _fill(base, shape):
    """An array of ``shape`` holding ``base``'s elements, repeated as needed (bits kept)."""
    base = to_native(base)
    if math.prod(shape) == 0:
        return np.empty(shape, dtype=base.dtype)
    if base.size == 0:
        base = np.zeros(1, dtype=base.dtype)
    return np.resize(base.ravel(), shape)


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
    "unaligned": (lambda b: unaligned(b), False),
    "unaligned-2d-strided": (lambda b: unaligned(_fill(b, (_rows(b.size), 6)))[:, ::2], False),
    # non-native byte order
    "byteswapped": (lambda b: byteswapped(b), False),
    "byteswapped-step2": (lambda b: byteswapped(_fill(b, (2 * b.size,)))[::2], False),
    # read-only contiguous
    "readonly": (lambda b: readonly(b), True),
    # np.broadcast_to: stride 0, read-only
    "broadcast-row": (lambda b: np.broadcast_to(b, (3, b.size)), True),
    "broadcast-scalar": (lambda b: np.broadcast_to(_fill(b, (1,)), (b.size,)), True),
    # non-contiguous slices of 3-D arrays
    "slices-3d": (lambda b: _fill(b, (4, 5, 2 * max(b.size // 10, 1) + 1))[::2, 1:4, ::-2], True),
    "slices-3d-inner": (lambda b: _fill(b, (3, 4, max(b.size // 6, 1) + 2))[1:, ::3, 1:-1], True),
}

LAYOUT_NAMES = tuple(_LAYOUTS)
#: Layouts that cannot be written to (in-place calls refuse them, out=x is impossible).
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


def applicable_layouts(dtype, names=LAYOUT_NAMES):
    """The layouts of ``names`` that apply to ``dtype`` (`layout_applies`)."""
    return [name for name in names if layout_applies(name, dtype)]


def layout_params(dtypes=ALL_DTYPE_NAMES, names=LAYOUT_NAMES):
    """``(dtype name, layout)`` pairs for pytest.mark.parametrize, inapplicable ones left out."""
    return [(np.dtype(dt).name, name) for dt in dtypes for name in names
            if layout_applies(name, dt)]


# --- the same values in another layout ---------------------------------------------------------

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
        return byteswapped(a)
    if kind == "unaligned":
        return unaligned(a)
    if kind == "readonly":
        return readonly(a)
    raise ValueError(kind)


# --- out arrays --------------------------------------------------------------------------------

OUT_KINDS = ("fresh", "fresh-F", "strided", "byteswapped", "unaligned")


def make_out(kind, shape, dtype, fill):
    """An output array of ``kind`` for a result of ``shape`` and ``dtype``, filled with
    ``fill``; returns ``(out, untouched)`` where ``untouched()`` asserts that memory
    around ``out`` (in its parent buffer) was not written."""
    dtype = native_dtype(dtype)
    nothing = (lambda: None)
    if kind == "fresh":
        return np.full(shape, fill, dtype=dtype), nothing
    if kind == "fresh-F":
        return np.full(shape, fill, dtype=dtype, order="F"), nothing
    if kind == "byteswapped":
        return np.full(shape, fill, dtype=dtype.newbyteorder()), nothing
    if kind == "unaligned":
        buf = np.full(math.prod(shape) * dtype.itemsize + 2, 0xA5, dtype=np.uint8)
        out = buf[1:-1].view(dtype).reshape(shape)
        out[...] = fill

        def untouched():
            assert buf[0] == 0xA5 and buf[-1] == 0xA5, "written around an unaligned out"
        return out, untouched
    if kind == "strided":
        if len(shape) == 0:
            parent = np.full((2,), fill, dtype=dtype)
            out, gaps = parent[0, ...], parent[1:]
        else:
            parent = np.full(shape[:-1] + (2 * shape[-1] + 1,), fill, dtype=dtype)
            out, gaps = parent[..., 1::2], parent[..., ::2]
        gaps[...] = 77
        expected_gaps = np.array(gaps, copy=True)

        def untouched():
            assert_same(np.array(gaps), expected_gaps, "gaps of a strided out")
        return out, untouched
    raise ValueError(kind)


# --- special values ------------------------------------------------------------------------

def float_special_bits(dtype):
    """Bit patterns of the special values of float ``dtype``, with their names."""
    dtype = native_dtype(dtype)
    nbits = 8 * dtype.itemsize
    finfo = np.finfo(dtype)
    nmant = finfo.nmant
    sign = 1 << (nbits - 1)
    exp = (sign - 1) ^ ((1 << nmant) - 1)     # all exponent bits
    quiet = 1 << (nmant - 1)
    top_mant = (1 << nmant) - 1

    def b(value):
        return int(np.array(value, dtype=dtype).view(uint_dtype(dtype)))

    return {
        "+0.0": 0, "-0.0": sign,
        "+inf": exp, "-inf": sign | exp,
        "qnan": exp | quiet, "-qnan": sign | exp | quiet,
        "qnan-payload": exp | quiet | 0x123, "-qnan-payload": sign | exp | quiet | 0x123,
        "snan": exp | 1, "-snan": sign | exp | 1,
        "nan-all-ones": exp | top_mant, "-nan-all-ones": sign | exp | top_mant,
        "min-subnormal": 1, "-min-subnormal": sign | 1,
        "max-subnormal": top_mant, "-max-subnormal": sign | top_mant,
        "tiny": b(finfo.smallest_normal), "-tiny": b(-finfo.smallest_normal),
        "max": b(finfo.max), "min": b(finfo.min),
        "one": b(1), "-one": b(-1), "half": b(0.5), "-two": b(-2),
        "eps": b(finfo.eps), "-eps": b(-finfo.eps),
        # around the clip of relu6
        "six": b(6), "-six": b(-6),
        "below-six": b(np.nextafter(dtype.type(6), dtype.type(0))),
        "above-six": b(np.nextafter(dtype.type(6), dtype.type(7))),
    }


def int_specials(dtype):
    """The special values of integer ``dtype``, with their names."""
    info = np.iinfo(dtype)
    values = {"0": 0, "1": 1, "2": 2, "5": 5, "6": 6, "7": 7,
              "max": info.max, "max-1": info.max - 1}
    if info.min < 0:
        values.update({"-1": -1, "-2": -2, "min": info.min, "min+1": info.min + 1})
    else:
        half = 1 << (8 * np.dtype(dtype).itemsize - 1)
        values.update({"high-bit": half, "high-bit-1": half - 1, "high-bit+1": half + 1})
    return values


def special_values(dtype):
    """A 1-D array of every special value of ``dtype`` (native byte order)."""
    dtype = native_dtype(dtype)
    if dtype.kind == "f":
        return from_bits(list(float_special_bits(dtype).values()), dtype)
    return np.array(list(int_specials(dtype).values()), dtype=dtype)


# --- random arrays ---------------------------------------------------------------------------

def random_values(rng, dtype, n):
    """``n`` values of ``dtype``: about half negative (for signed types); many small
    ones in [-10, 10] (floats in steps of 0.5, so that the clip at 6 and the
    generated threshold bounds are hit exactly); for floats, wide magnitudes
    and arbitrary bit patterns (NaNs with every payload, subnormals); and a
    fifth of them special values."""
    dtype = native_dtype(dtype)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            scale = np.exp2(rng.integers(-30, 30, size=n)).astype(np.float64)
            a = (rng.standard_normal(n) * scale).astype(dtype)
        small = (rng.integers(-20, 21, size=n) / 2).astype(dtype)
        a = np.where(rng.random(n) < 0.4, small, a)
        k = n // 10               # a tenth: arbitrary bits
        if k:
            ut = uint_dtype(dtype)
            raw = rng.integers(0, np.iinfo(ut).max, size=k, dtype=ut, endpoint=True)
            a[rng.integers(0, n, size=k)] = raw.view(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
        small = rng.integers(-10 if info.min < 0 else 0, 11, size=n).astype(dtype)
        a = np.where(rng.random(n) < 0.4, small, a)
    specials = special_values(dtype)
    k = n // 5                    # a fifth: the special values
    if k:
        a[rng.integers(0, n, size=k)] = specials[rng.integers(0, len(specials), k)]
    elif n:
        a[rng.integers(0, n)] = specials[rng.integers(0, len(specials))]
    return a
