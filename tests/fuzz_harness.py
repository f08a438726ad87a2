"""A fuzzing harness for fastrelu's public functions, independent of the engine.

``run_case(src)`` builds one call from the choices of ``src`` (a `Source`: the
Hypothesis adapter in tests/test_fuzz.py, or the atheris one in
scripts/fuzz.py) and checks it:

* the function: any operation of the registry or its in-place twin, with
  its parameters drawn from the generated ones (helpers.param_sets), or now
  and then one that is not a real number or out of an integer dtype's range;

* operands: any dtype (the supported ones and bool, complex, longdouble,
  bytes, str, datetime, timedelta, void, structured, object) in either byte
  order, 0-3 dimensions (or a long 1-D array: 500-6000 elements, or two to
  three 64 KiB thread chunks' worth), strides of any sign including 0 and
  non-multiples of the itemsize (unaligned, even internally overlapping), at
  any byte offset of one shared 256 KiB uint8 arena, read-only or not;
  sometimes passed as a list, a scalar or a memoryview instead of an ndarray;
* ``out``: None, a fresh array (C, strided or byte-swapped), the input itself,
  another view of the arena that overlaps the inputs (often the input's own
  layout shifted by a few elements), one of the wrong shape or dtype, a
  read-only one, or not an ndarray at all;
* the kernels: any instruction-set level this CPU runs, and the dispatch
  thresholds as shipped or at zero (GIL release, two threads, streaming
  stores), restored after the call.

The call must either return the reference's bits (fastrelu._reference, plain
NumPy) -- also when ``out`` partially overlaps an input -- and write nothing
outside ``out`` (or, for an in-place twin, outside ``x``), or raise TypeError /
ValueError exactly when the documented conditions hold, with an ordinary
message (no Cython buffer errors), and with no byte of any operand changed. A
crash of the process is a failure by itself. Failures raise ``FuzzFailure``.
"""
import warnings

import numpy as np

from fastrelu import _engine
from helpers import (ALL_DTYPE_NAMES, CHUNK_MIN_BYTES, OPS, assert_same, call, call_inplace,
                     expected, param_sets, reference_error, to_native)

DTYPES = tuple(np.dtype(n) for n in ALL_DTYPE_NAMES)
#: (op, in place?) for every public function of the registry
FUNCS = tuple((op, inplace) for op in OPS
              for inplace in ((False, True) if op.inplace else (False,)))
BAD_PARAMS = ("1", None, True, 1j, np.array([1.0]), np.nan, np.inf, 300, -300, 2**64)
UNSUPPORTED = ("bool", "complex64", "complex128", "longdouble", "S3", "U1",
               "datetime64[s]", "timedelta64[ms]", "V4", "i2,f4", "object")
ARENA_BYTES = 1 << 18
OUT_MODES = ("none", "fresh", "fresh-strided", "fresh-byteswapped", "aliased",
             "overlapping", "wrong-shape", "wrong-dtype", "read-only", "not-ndarray")
BAD_MESSAGES = ("Buffer dtype mismatch", "Buffer has wrong", "ndarray is not",
                "has incorrect type", "Cannot convert", "did not expect", "<cyfunction",
                "NULL", "SystemError")


class FuzzFailure(AssertionError):
    pass


class Source:
    """What the harness needs from a fuzzing engine."""

    def integer(self, lo, hi):       # inclusive bounds
        raise NotImplementedError

    def raw(self, n):                # up to n bytes
        raise NotImplementedError

    def boolean(self):
        return self.integer(0, 1) == 1

    def pick(self, seq):
        return seq[self.integer(0, len(seq) - 1)]


class HypothesisSource(Source):
    """Draws from a ``hypothesis.strategies.data()`` object."""

    def __init__(self, data):
        self.data = data

    def integer(self, lo, hi):
        from hypothesis import strategies as st
        return self.data.draw(st.integers(lo, hi))

    def raw(self, n):
        from hypothesis import strategies as st
        return self.data.draw(st.binary(max_size=n))


# --- building operands -------------------------------------------------------------

def native_dtype(dt):
    try:
        return dt.newbyteorder("=")
    except (TypeError, ValueError):
        return dt


def is_supported(dt, op=None):
    """``dt`` is a dtype ``op`` (by default, some op) takes."""
    return (native_dtype(dt) in DTYPES
            and (op is None or native_dtype(dt).name in op.dtype_names))


def draw_dtype(src, op):
    """Mostly a dtype ``op`` takes; else any supported or unsupported one."""
    if src.integer(0, 5) > 0:
        dt = np.dtype(src.pick(op.dtype_names))
    else:
        dt = np.dtype(src.pick(DTYPES + UNSUPPORTED))
    if dt.itemsize > 1 and dt.kind not in "OSUV" and src.integer(0, 3) == 0:
        dt = dt.newbyteorder(">" if dt.isnative and np.little_endian else "<")
    return dt


def draw_shape(src, itemsize=1, max_dims=3):
    if src.integer(0, 7) == 0:
        # long 1-D: with the thresholds at 0, an output of more than one thread
        # chunk (64 KiB, starting on multiples of 64 KiB) is split between the
        # threads, and streamed
        if src.boolean():
            return (src.integer(500, 6000),)
        return (src.integer(2, 3) * CHUNK_MIN_BYTES // itemsize,)
    return tuple(src.integer(0, 5) for _ in range(src.integer(0, max_dims)))


def draw_strides(src, shape, itemsize):
    strides = []
    natural = itemsize
    for n in reversed(shape):
        kind = src.integer(0, 5)
        if kind <= 2:
            s = natural                                   # contiguous in this dim
        elif kind == 3:
            s = natural * src.pick((-1, 2, -2, 3))        # reversed or stepped
        elif kind == 4:
            s = 0                                         # broadcast
        else:
            s = src.integer(-3 * itemsize, 3 * itemsize)  # anything: unaligned, overlapping
        strides.append(s)
        natural = natural * max(n, 1)
    return tuple(reversed(strides))


def extent(shape, strides, itemsize):
    """(lowest, highest + 1) byte offset touched, relative to the first element."""
    if 0 in shape:
        return 0, 0
    lo = sum(min(0, s * (n - 1)) for n, s in zip(shape, strides))
    hi = sum(max(0, s * (n - 1)) for n, s in zip(shape, strides))
    return lo, hi + itemsize


def footprint(a, arena):
    """Byte offsets (into ``arena``) of the elements of view ``a``, shape (size,);
    None if ``a`` does not live in ``arena``."""
    if not isinstance(a, np.ndarray) or a.dtype.kind == "O":
        return None
    start = a.__array_interface__["data"][0] - arena.__array_interface__["data"][0]
    if not 0 <= start <= arena.size:
        return None
    offs = np.full(a.shape, start, np.int64)
    for axis, s in enumerate(a.strides):
        shape = [1] * a.ndim
        shape[axis] = a.shape[axis]
        offs = offs + (np.arange(a.shape[axis], dtype=np.int64) * s).reshape(shape)
    return offs.ravel()


def byte_mask(offsets, itemsize, size):
    m = np.zeros(size, bool)
    for k in range(itemsize):
        m[offsets + k] = True
    return m


def internal_overlap(a):
    """Two elements of ``a`` share a byte (stride 0, or a stride < itemsize)."""
    if a.size <= 1:
        return False
    offs = np.zeros(1, np.int64)
    for n, s in zip(a.shape, a.strides):
        offs = (offs[:, None] + np.arange(n, dtype=np.int64)[None, :] * s).ravel()
    offs.sort()
    return bool((np.diff(offs) < a.dtype.itemsize).any())


def view_in_arena(src, arena, dtype, shape=None, strides=None):
    """A view of ``arena`` with the given or drawn shape and strides, at a drawn offset."""
    shape = draw_shape(src, dtype.itemsize) if shape is None else shape
    strides = draw_strides(src, shape, dtype.itemsize) if strides is None else strides
    lo, hi = extent(shape, strides, dtype.itemsize)
    if hi - lo > arena.size:
        strides = tuple(s // 4 for s in strides)        # keep it inside the arena
        lo, hi = extent(shape, strides, dtype.itemsize)
        if hi - lo > arena.size:
            shape = tuple(min(n, 1) for n in shape)
            lo, hi = extent(shape, strides, dtype.itemsize)
    offset = src.integer(-lo, arena.size - hi) if hi - lo <= arena.size else -lo
    return np.ndarray(shape, dtype, buffer=arena, offset=offset, strides=strides)


def make_operand(src, arena, dtype, shape=None):
    """An ndarray (mostly a view of the arena) or another array-like of ``dtype``."""
    if dtype.kind == "O":
        shape = draw_shape(src, dtype.itemsize) if shape is None else shape
        vals = [src.integer(-5, 5) for _ in range(min(int(np.prod(shape)), 50))]
        shape = (len(vals),)
        a = np.empty(len(vals), object)
        a[:] = vals
        return a.reshape(shape)
    a = view_in_arena(src, arena, dtype, shape)
    if src.integer(0, 6) == 0:
        a.flags.writeable = False
    return a


def as_container(src, a):
    """``a`` itself, or the same data as a list / scalar / memoryview."""
    kind = src.integer(0, 11)
    try:
        if kind == 0:
            return a.tolist()
        if kind == 1 and a.ndim == 0:
            return a[()]
        if kind == 2:
            return memoryview(a)
    except Exception:       # noqa: BLE001 - NumPy cannot convert it (e.g. invalid str data)
        pass
    return a


def make_out(src, mode, arena, x, g, dtype, shape):
    """The ``out`` argument for ``mode``; ``dtype``/``shape`` are those of the result."""
    if mode == "none":
        return None
    if mode == "not-ndarray":
        return src.pick(([0] * int(np.prod(shape)), 0, memoryview(bytearray(8)), "out"))
    if mode == "aliased":
        return src.pick([a for a in (x, g) if isinstance(a, np.ndarray)])
    if mode == "wrong-shape":
        choice = src.integer(0, 2)
        if choice == 0:
            bad = shape + (1,)
        elif choice == 1 and shape:
            bad = shape[:-1] + (shape[-1] + 1,)
        else:
            bad = shape[1:] if shape else (2,)
        return np.zeros(bad, dtype)
    if mode == "wrong-dtype":
        others = [d for d in DTYPES + (np.dtype(bool), np.dtype("complex64"))
                  if native_dtype(d) != native_dtype(dtype)]
        return np.zeros(shape, src.pick(others))
    if mode == "overlapping":
        d = dtype if src.boolean() else dtype.newbyteorder()
        near = src.pick([a for a in (x, g) if isinstance(a, np.ndarray)])
        if (src.boolean() and near.dtype.kind != "O" and near.shape == shape
                and near.dtype.itemsize == d.itemsize):
            # the input's layout shifted by a few elements: the overlap NumPy
            # hands to the loop without a copy when out comes first
            start = near.__array_interface__["data"][0] - arena.__array_interface__["data"][0]
            offset = start + src.integer(-3, 3) * d.itemsize
            lo, hi = extent(shape, near.strides, d.itemsize)
            if 0 <= offset + lo and offset + hi <= arena.size:
                return np.ndarray(shape, d, buffer=arena, offset=offset, strides=near.strides)
        return view_in_arena(src, arena, d, shape)
    out = np.frombuffer(src.raw(8).ljust(8, b"\x5a") * (int(np.prod(shape)) * dtype.itemsize
                                                         // 8 + 1), np.uint8)
    out = out[:int(np.prod(shape)) * dtype.itemsize].copy().view(dtype).reshape(shape)
    if mode == "fresh-strided" and out.ndim:
        parent = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        view = parent[..., ::-2] if src.boolean() else parent[..., ::2]
        view[...] = out
        out = view
    elif mode == "fresh-byteswapped" and dtype.itemsize > 1:
        out = out.byteswap().view(dtype.newbyteorder())
    elif mode == "read-only":
        out.flags.writeable = False
    return out


# --- the documented errors -------------------------------------------------------------

def arraylike_dtype(obj):
    return obj.dtype if isinstance(obj, np.ndarray) else np.asarray(obj).dtype


def arraylike_shape(obj):
    return obj.shape if isinstance(obj, np.ndarray) else np.asarray(obj).shape


def param_errors(op, dtype, params):
    """The exception the reference raises for these parameters on ``dtype`` data
    (a dtype ``op`` takes), as a set (empty: none)."""
    error = reference_error(op, (np.zeros(1, native_dtype(dtype)),) * op.arity, params)
    return {error} if error else set()


def expected_errors(op, inplace, x, g, out, params):
    """The exception types the documented conditions call for (empty: must succeed)."""
    errs = set()
    if inplace:
        if not isinstance(x, np.ndarray):
            return {TypeError}
        if not is_supported(x.dtype, op):
            errs.add(TypeError)
        else:
            errs |= param_errors(op, x.dtype, params)
        if not x.flags.writeable:
            errs.add(ValueError)
        return errs
    xd = arraylike_dtype(x)
    if not is_supported(xd, op):
        errs.add(TypeError)
    else:
        errs |= param_errors(op, xd, params)
    shape = arraylike_shape(x)
    if op.arity == 2:
        gd = arraylike_dtype(g)
        if not is_supported(gd, op):
            errs.add(TypeError)
        elif native_dtype(gd) != native_dtype(xd):
            errs.add(TypeError)
        if arraylike_shape(g) != shape:
            errs.add(ValueError)
    if out is not None:
        if not isinstance(out, np.ndarray):
            errs.add(TypeError)
        else:
            if native_dtype(out.dtype) != native_dtype(xd):
                errs.add(TypeError)
            if out.shape != shape:
                errs.add(ValueError)
            if not out.flags.writeable:
                errs.add(ValueError)
    return errs


# --- one case -----------------------------------------------------------------------------

def fill_arena(src):
    """The shared buffer: a tiled byte pattern from the source over seeded noise."""
    seed = src.integer(0, 2**32 - 1)
    arena = np.frombuffer(np.random.default_rng(seed).bytes(ARENA_BYTES), np.uint8).copy()
    pattern = src.raw(64)
    if pattern:
        tiled = np.resize(np.frombuffer(pattern, np.uint8), ARENA_BYTES)
        keep = src.integer(0, 2)      # 0: pattern only, 1: first half, 2: noise only
        if keep == 0:
            arena[:] = tiled
        elif keep == 1:
            arena[:ARENA_BYTES // 2] = tiled[:ARENA_BYTES // 2]
    return arena


def snapshot(obj):
    if isinstance(obj, np.ndarray):
        return ("nd", obj.dtype, obj.shape, obj.tobytes() if obj.dtype.kind != "O"
                else obj.tolist())
    if isinstance(obj, memoryview):
        return ("mv", obj.tobytes())
    if isinstance(obj, list):
        return ("list", repr(obj))
    return ("other", repr(obj))


def draw_params(src, op, dtype):
    """Parameters for ``op``: mostly generated ones for ``dtype``, now and then
    one that is not a real number or out of an integer dtype's range."""
    kind = native_dtype(dtype).name if is_supported(dtype, op) else "float64"
    params = list(src.pick(param_sets(op, kind)))
    if params and src.integer(0, 7) == 0:
        params[src.integer(0, len(params) - 1)] = src.pick(BAD_PARAMS)
    return tuple(params)


def run_case(src):
    op, inplace = src.pick(FUNCS)
    arena = fill_arena(src)
    xdt = draw_dtype(src, op)
    x_arr = make_operand(src, arena, xdt)
    g_arr = None
    if op.arity == 2:
        same = src.integer(0, 4)
        gdt = xdt if same else draw_dtype(src, op)
        gshape = x_arr.shape if src.integer(0, 5) else draw_shape(src, gdt.itemsize)
        g_arr = make_operand(src, arena, gdt, gshape)
    params = draw_params(src, op, xdt)
    x = as_container(src, x_arr)
    g = as_container(src, g_arr) if g_arr is not None else None
    mode = src.pick(OUT_MODES) if not inplace else "none"
    res_dtype = native_dtype(arraylike_dtype(x)) if not inplace else None
    res_shape = arraylike_shape(x) if not inplace else None
    if mode != "none" and not is_supported(res_dtype, op):
        res_dtype = np.dtype(np.float32) if mode != "wrong-dtype" else res_dtype
    out = make_out(src, mode, arena, x_arr, g_arr, res_dtype, res_shape) \
        if not inplace else None
    # the kernel variant: instruction-set level, and thresholds at 0 (threads,
    # streaming stores) or as shipped
    level = src.pick(_engine.supported_isa_levels())
    low = src.boolean()
    previous_isa = _engine.use_isa(level)
    previous_thresholds = _engine.thresholds(0, 1, 0, cold_parallel_min_bytes=1) if low else None
    func = op.inplace_name if inplace else op.name
    try:
        check_call(op, inplace, x, g, out, params, arena,
                   describe=dict(func=func, x_dtype=str(xdt), x=x_arr, g=g_arr, params=params,
                                 out_mode=mode, isa=level, low_thresholds=low))
    finally:
        _engine.use_isa(previous_isa)
        if previous_thresholds is not None:
            _engine.thresholds(**previous_thresholds)


def _describe_array(a):
    if not isinstance(a, np.ndarray):
        return type(a).__name__
    return (f"ndarray(dtype={a.dtype}, shape={a.shape}, strides={a.strides}, "
            f"aligned={a.flags.aligned}, writeable={a.flags.writeable})")


def fail(msg, describe):
    parts = [msg] + [f"  {k}: {_describe_array(v) if isinstance(v, np.ndarray) else v}"
                     for k, v in describe.items()]
    raise FuzzFailure("\n".join(parts))


def check_call(op, inplace, x, g, out, params, arena, describe):
    func = describe["func"]
    errs = expected_errors(op, inplace, x, g, out, params)
    arena_before = arena.copy()
    operands = [o for o in (x, g, out) if o is not None]
    before = [snapshot(o) for o in operands]
    args = (x,) if op.arity == 1 else (g, x)
    # the reference, from copies of the inputs taken before the call
    want = None
    if not errs:
        want = expected(op, tuple(np.array(a, copy=True) for a in args), params)
    describe = dict(describe, expected_errors=sorted(e.__name__ for e in errs))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if inplace:
                result = call_inplace(op, x, params)
            elif out is None:
                result = call(op, args, params)
            else:
                result = call(op, args, params, out=out)
    except (TypeError, ValueError) as e:
        msg = f"{type(e).__name__}: {e}"
        if not errs:
            fail(f"{func} raised {msg} but no documented error condition holds", describe)
        if not any(isinstance(e, t) for t in errs):
            fail(f"{func} raised {msg}; expected one of {describe['expected_errors']}", describe)
        if any(bad in str(e) for bad in BAD_MESSAGES):
            fail(f"{func} raised an internal-looking error: {msg}", describe)
        if not np.array_equal(arena, arena_before):
            fail(f"{func} raised {msg} after writing to memory", describe)
        if [snapshot(o) for o in operands] != before:
            fail(f"{func} raised {msg} after modifying an operand", describe)
        return
    except Exception as e:       # noqa: BLE001 - any other exception type is a finding
        fail(f"{func} raised {type(e).__name__}: {e}", describe)
    if errs:
        fail(f"{func} succeeded but should raise one of {describe['expected_errors']}", describe)

    # --- success: the right object, the reference's bits, nothing else written --------
    target = x if inplace else out
    if target is not None and result is not target:
        fail(f"{func} did not return {'x' if inplace else 'out'}", describe)
    if not isinstance(result, np.ndarray):
        fail(f"{func} returned {type(result).__name__}", describe)
    if target is None and result.dtype != want.dtype:
        fail(f"{func} returned dtype {result.dtype}, expected {want.dtype}", describe)
    check_values = not (isinstance(target, np.ndarray) and internal_overlap(target))
    if check_values:
        try:
            assert_same(to_native(result), want, func)
        except AssertionError as e:
            fail(str(e), describe)
    written = footprint(target, arena) if target is not None else None
    if written is not None:
        mask = byte_mask(written, target.dtype.itemsize, arena.size)
        changed = np.flatnonzero((arena != arena_before) & ~mask)
    else:
        changed = np.flatnonzero(arena != arena_before)
    if changed.size:
        fail(f"{func} wrote {changed.size} byte(s) outside its output, first at arena "
             f"offset {changed[0]}", describe)
    for o, b in zip(operands, before):
        if o is target:
            continue
        if isinstance(o, (np.ndarray, memoryview)) and isinstance(target, np.ndarray) \
                and np.may_share_memory(np.asarray(o), target):
            continue        # (its bytes outside the output were checked in the arena)
        if snapshot(o) != b:
            fail(f"{func} modified an input", describe)
