"""Compiled core: the dtype table, the instruction-set and thread dispatch, the
contiguous fast path of every public function, and the ufuncs.

A call on an exact, aligned, native-byte-order, contiguous ndarray of a
supported dtype goes straight from the argument check to the kernel (~0.1 us of
overhead). Anything else -- array-likes, views with strides, byte-swapped data,
partially overlapping ``out``, every error -- goes to ``fastrelu._api``, which
validates in Python and runs the ufuncs defined here over the same kernels.
"""
cimport cython
cimport numpy as cnp
from numpy cimport (ndarray, npy_intp, PyArray_DATA, PyArray_DIMS, PyArray_FLAGS,
                    PyArray_ISNOTSWAPPED, PyArray_NDIM, PyArray_SIZE, PyArray_STRIDES,
                    PyArray_TYPE)
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from libc.string cimport memcpy, memcmp
cimport openmp

from fastrelu._kernels cimport (unary_fn, binary_fn, kernel_table_t, slope_t, c_api_t,
                                OP_RELU, OP_RELU_GRAD, OP_RELU6, OP_LEAKY, N_UNARY,
                                OP_RELU_BACKWARD, OP_RELU6_BACKWARD, OP_LEAKY_BACKWARD, N_BINARY,
                                C_INT8, C_INT16, C_INT32, C_INT64, C_UINT8,
                                R_HALF, R_FLOAT, R_DOUBLE)

import importlib
import os
import warnings

import numpy as np

cnp.import_array()
cnp.import_ufunc()


cdef extern from "numpy/arrayobject.h":
    # ``descr=NULL`` takes the prototype's dtype; a new C- or F-ordered array.
    object new_like "PyArray_NewLikeArray" (ndarray prototype, cnp.NPY_ORDER order,
                                            void *descr, int subok)
    enum:
        NPY_NTYPES_LEGACY

cdef extern from "numpy/ufuncobject.h":
    ctypedef void (*PyUFuncGenericFunction)(char **args, const npy_intp *dims,
                                            const npy_intp *steps, void *data) noexcept nogil
    object new_ufunc "PyUFunc_FromFuncAndData" (
        PyUFuncGenericFunction *funcs, void **data, char *types, int ntypes, int nin, int nout,
        int identity, const char *name, const char *doc, int unused)
    enum:
        PyUFunc_None

cdef extern from "_runtime.h":
    int fr_cpu_level() noexcept nogil
    int fr_register_atfork() noexcept nogil
    ctypedef void (*fr_chunk_fn)(void *ctx, npy_intp start, npy_intp stop) noexcept nogil
    void fr_pool_run(fr_chunk_fn fn, void *ctx, npy_intp n, npy_intp chunk,
                     int threads) noexcept nogil
    bint fr_team_acquire() noexcept nogil
    void fr_team_release() noexcept nogil
    const char *fr_compiler_version


# --- the dtype table: one row per NumPy type number ------------------------------

ctypedef struct dtype_kernels_t:
    unary_fn unary[N_UNARY]     # NULL: the op does not take this dtype
    unary_fn relu_stream
    binary_fn binary[N_BINARY]
    npy_intp itemsize
    cnp.npy_int64 consts[4]     # {NEG, POS, ONE, SIX} in the dtype's width (_kernels.pxi)

cdef dtype_kernels_t KERNELS[NPY_NTYPES_LEGACY]

#: The dtypes the kernels accept, in native byte order: every integer type
#: number (the platform aliases such as ``longlong`` included) and the floats.
SUPPORTED_DTYPES = tuple({dt.num: dt for dt in map(np.dtype, np.typecodes["AllInteger"] + "efd")}.values())
#: The dtypes of leaky_relu, which scales by a float slope.
FLOAT_DTYPES = tuple(np.dtype(c) for c in "efd")


def _consts(dt):
    """{NEG, POS, ONE, SIX} of ``dt`` as bytes of its integer carrier (_kernels.pxi)."""
    if dt.kind == "f":
        values = np.array([-np.inf, np.inf, 1, 6], dtype=dt)
    else:
        values = np.array([0, np.iinfo(dt).max, 1, 6], dtype=dt)
    return values.tobytes()


cdef void _fill_table(const kernel_table_t *t) except *:
    cdef dtype_kernels_t *row
    cdef bytes consts
    cdef int carrier, real
    for dt in SUPPORTED_DTYPES:
        carrier = {1: C_INT8, 2: C_INT16, 4: C_INT32, 8: C_INT64}[dt.itemsize]
        if dt.kind == "u":
            carrier += C_UINT8
        row = &KERNELS[dt.num]
        row.unary[OP_RELU] = t.relu[carrier]
        row.unary[OP_RELU_GRAD] = t.grad[carrier]
        row.unary[OP_RELU6] = t.relu6[carrier]
        row.relu_stream = t.relu_stream[carrier]
        row.binary[OP_RELU_BACKWARD] = t.backward[carrier]
        row.binary[OP_RELU6_BACKWARD] = t.relu6_backward[carrier]
        if dt.kind == "f":
            real = {2: R_HALF, 4: R_FLOAT, 8: R_DOUBLE}[dt.itemsize]
            row.unary[OP_LEAKY] = t.leaky[real]
            row.binary[OP_LEAKY_BACKWARD] = t.leaky_backward[real]
        else:
            row.unary[OP_LEAKY] = NULL
            row.binary[OP_LEAKY_BACKWARD] = NULL
        row.itemsize = dt.itemsize
        consts = _consts(dt)
        memcpy(row.consts, <const char *>consts, len(consts))


# --- instruction-set level ---------------------------------------------------------

ISA_LEVELS = ("baseline", "avx2", "avx512")


def _choose_isa():
    """The best level this CPU runs, or a lower one forced by FASTRELU_CPU."""
    best = fr_cpu_level()
    forced = os.environ.get("FASTRELU_CPU", "").strip().lower()
    if not forced:
        return ISA_LEVELS[best]
    if forced not in ISA_LEVELS:
        warnings.warn(f"FASTRELU_CPU={forced!r} is not one of {ISA_LEVELS}; ignored",
                      RuntimeWarning, stacklevel=2)
        return ISA_LEVELS[best]
    if ISA_LEVELS.index(forced) > best:
        warnings.warn(f"FASTRELU_CPU={forced!r}: this CPU does not support it; using "
                      f"{ISA_LEVELS[best]!r}", RuntimeWarning, stacklevel=2)
        return ISA_LEVELS[best]
    return forced


def supported_isa_levels():
    """The instruction-set levels this CPU can run, lowest first."""
    return ISA_LEVELS[:fr_cpu_level() + 1]


cdef kernel_table_t TABLE


cdef void _load_isa(str level) except *:
    global TABLE
    module = importlib.import_module(f"fastrelu._kernels_{level}")
    TABLE = (<kernel_table_t *>PyCapsule_GetPointer(module.kernel_table(),
                                                   b"fastrelu.kernel_table"))[0]
    _fill_table(&TABLE)


ISA = _choose_isa()
_load_isa(ISA)


def use_isa(level):
    """Switch the kernels to instruction-set ``level``; returns the previous one.

    Private, for tests and calibration that compare levels in one process; not
    safe while other threads are calling fastrelu. Users set FASTRELU_CPU.
    """
    global ISA
    if level not in supported_isa_levels():
        raise ValueError(f"instruction-set level {level!r} is not supported here; "
                         f"choose from {supported_isa_levels()}")
    previous = ISA
    _load_isa(level)
    ISA = level
    return previous


# --- threads -------------------------------------------------------------------------

# Below these sizes the extra work does not pay (measured; see docs/performance.rst).
cdef npy_intp NOGIL_MIN_BYTES = 1 << 15      # release the GIL
cdef npy_intp PARALLEL_MIN_BYTES = 1 << 18   # split across threads
cdef npy_intp STREAM_MIN_BYTES = 1 << 25     # non-temporal stores (out-of-place relu);
                                             # set to the last-level cache size below
# Thread chunks: a power of two from 64 KiB to 2 MiB, about 4 per thread (so a
# late thread still finds work), with boundaries at multiples of the chunk size
# in the output's address space: two threads never first-touch the same page
# or 2 MiB huge page (measured: faulting a fresh 40 MB output from two threads
# in 1 MiB chunks took 5.9 ms, more than from one thread, 3.9 ms).
cdef npy_intp CHUNK_MIN_BYTES = 1 << 16
cdef npy_intp CHUNK_MAX_BYTES = 1 << 21

@cython.wraparound(True)
def _last_level_cache_bytes():
    """Size of the largest CPU cache (Linux sysfs, else sysconf), or 0."""
    sizes = []
    for index in range(4):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as f:
                text = f.read().strip()
            sizes.append(int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1], 0))
        except (OSError, ValueError):
            pass
    if sizes:
        return max(sizes)
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            size = os.sysconf(name)
        except (ValueError, OSError):
            continue
        if size > 0:
            return size
    return 0


# Streaming pays once the output no longer fits in the last-level cache
# (measured: 16 MB float32 on a 32 MB L3 is faster with plain stores, 40 MB with
# streaming ones; docs/performance.rst).
STREAM_MIN_BYTES = _last_level_cache_bytes() or STREAM_MIN_BYTES

if fr_register_atfork() != 0:
    raise ImportError("fastrelu: pthread_atfork failed")

cdef int _threads = 0                        # 0: follow OpenMP (OMP_NUM_THREADS, threadpoolctl)


def thresholds(nogil_min_bytes=None, parallel_min_bytes=None, stream_min_bytes=None):
    """Read, and optionally set, the size thresholds (bytes) of the dispatcher.

    Private: for calibration scripts and for tests that must reach the
    threaded and streaming paths with small arrays. Returns the previous values.
    """
    global NOGIL_MIN_BYTES, PARALLEL_MIN_BYTES, STREAM_MIN_BYTES
    previous = {"nogil_min_bytes": NOGIL_MIN_BYTES,
                "parallel_min_bytes": PARALLEL_MIN_BYTES,
                "stream_min_bytes": STREAM_MIN_BYTES}
    if nogil_min_bytes is not None:
        NOGIL_MIN_BYTES = max(0, nogil_min_bytes)
    if parallel_min_bytes is not None:
        PARALLEL_MIN_BYTES = max(1, parallel_min_bytes)
    if stream_min_bytes is not None:
        STREAM_MIN_BYTES = max(0, stream_min_bytes)
    return previous


def get_num_threads():
    """Number of threads a large call uses (the ``set_num_threads`` value, or
    else OpenMP's current maximum, which follows ``OMP_NUM_THREADS`` and
    ``threadpoolctl.threadpool_limits``)."""
    return _threads if _threads > 0 else openmp.omp_get_max_threads()


def swap_threads(int n):
    """Set the thread count (0: follow OpenMP) and return the previous one."""
    global _threads
    previous, _threads = _threads, n
    return previous


cdef inline int _team_size(npy_intp nbytes) noexcept nogil:
    """Threads for a call of ``nbytes`` output bytes; >1 means the team is held."""
    cdef int nt
    if nbytes < PARALLEL_MIN_BYTES:
        return 1
    nt = _threads if _threads > 0 else openmp.omp_get_max_threads()
    # every thread gets at least half the threshold
    nt = <int>min(<npy_intp>nt, 2 * nbytes // PARALLEL_MIN_BYTES)
    if nt <= 1 or openmp.omp_in_parallel() or not fr_team_acquire():
        return 1
    return nt


# --- one call: the kernel, its operands, and how to split it ------------------------

ctypedef struct call_t:
    unary_fn unary             # exactly one of unary / binary is set
    unary_fn unary_stream      # streaming variant of ``unary``, or NULL
    binary_fn binary
    const void *consts
    const char *a              # x (unary) or grad_output (binary)
    const char *b              # x (binary)
    char *out
    npy_intp sa, sb, so        # byte strides
    npy_intp itemsize
    npy_intp pad               # threaded runs: elements before the first chunk boundary


cdef inline void _run_chunk(const call_t *k, npy_intp start, npy_intp stop) noexcept nogil:
    if start >= stop:
        return
    if k.binary != NULL:
        k.binary(k.a + start * k.sa, k.sa, k.b + start * k.sb, k.sb,
                 k.out + start * k.so, k.so, stop - start, k.consts)
    else:
        k.unary(k.a + start * k.sa, k.sa, k.out + start * k.so, k.so,
                stop - start, k.consts)


cdef inline bint _overlap(const char *p, npy_intp sp, const char *q, npy_intp sq,
                          npy_intp n, npy_intp itemsize) noexcept nogil:
    """The memory spans of two strided operands of n elements intersect."""
    cdef const char *p0 = p if sp >= 0 else p + (n - 1) * sp
    cdef const char *p1 = (p + (n - 1) * sp if sp >= 0 else p) + itemsize
    cdef const char *q0 = q if sq >= 0 else q + (n - 1) * sq
    cdef const char *q1 = (q + (n - 1) * sq if sq >= 0 else q) + itemsize
    return p0 < q1 and q0 < p1


cdef inline bint _shares_memory(const call_t *k, npy_intp n, bint allow_same) noexcept nogil:
    """An input's memory meets the output's (not counting, when ``allow_same``,
    an input that *is* the output: same address and stride, an in-place call)."""
    if n <= 0:
        return False
    if (not (allow_same and k.a == k.out and k.sa == k.so)
            and _overlap(k.a, k.sa, k.out, k.so, n, k.itemsize)):
        return True
    return (k.binary != NULL
            and not (allow_same and k.b == k.out and k.sb == k.so)
            and _overlap(k.b, k.sb, k.out, k.so, n, k.itemsize))


cdef void _chunk_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    # the pool counts from a boundary ``pad`` elements before the output's start
    cdef const call_t *k = <const call_t *>ctx
    _run_chunk(k, max(start - k.pad, 0), stop - k.pad)


cdef void _execute(call_t *k, npy_intp n) noexcept nogil:
    """Run ``k`` over n elements: streaming stores and threads when large.

    NumPy hands a ufunc loop operands that overlap when a forward,
    element-by-element pass is still correct (``out`` trailing an input);
    splitting such a call across threads is not, so it stays on one thread,
    and streaming stores are used only on memory apart from the inputs.
    """
    cdef npy_intp nbytes = n * k.itemsize, chunk
    cdef int nt
    if (k.unary_stream != NULL and nbytes >= STREAM_MIN_BYTES
            and k.sa == k.itemsize and k.so == k.itemsize
            and not _shares_memory(k, n, False)):
        k.unary = k.unary_stream
    if nbytes < PARALLEL_MIN_BYTES or _shares_memory(k, n, True):
        nt = 1
    else:
        nt = _team_size(nbytes)
    if nt <= 1:
        _run_chunk(k, 0, n)
        return
    chunk = CHUNK_MIN_BYTES
    while chunk < CHUNK_MAX_BYTES and chunk * 2 <= nbytes // (4 * nt):
        chunk *= 2
    # boundaries aligned in memory for a contiguous output; a strided one starts at 0
    k.pad = ((<size_t>k.out) % <size_t>chunk) // k.itemsize if k.so == k.itemsize else 0
    fr_pool_run(_chunk_cb, k, n + k.pad, chunk // k.itemsize, nt)
    fr_team_release()


cdef inline void _execute_gil(call_t *k, npy_intp n):
    if n * k.itemsize >= NOGIL_MIN_BYTES:
        with nogil:
            _execute(k, n)
    else:
        _run_chunk(k, 0, n)


cdef inline void _set_unary(call_t *k, const dtype_kernels_t *d, unary_fn fn,
                            unary_fn stream, const void *consts, const char *x,
                            npy_intp sx, char *out, npy_intp so) noexcept nogil:
    k.unary = fn
    k.unary_stream = stream
    k.binary = NULL
    k.consts = consts
    k.a = x
    k.sa = sx
    k.b = NULL
    k.sb = 0
    k.out = out
    k.so = so
    k.itemsize = d.itemsize


cdef inline void _set_binary(call_t *k, const dtype_kernels_t *d, binary_fn fn,
                             const void *consts, const char *g, npy_intp sg,
                             const char *x, npy_intp sx, char *out, npy_intp so) noexcept nogil:
    k.unary = NULL
    k.unary_stream = NULL
    k.binary = fn
    k.consts = consts
    k.a = g
    k.sa = sg
    k.b = x
    k.sb = sx
    k.out = out
    k.so = so
    k.itemsize = d.itemsize


# --- the contiguous fast path ---------------------------------------------------------

cdef enum:
    CONTIGUOUS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_F_CONTIGUOUS


cdef inline const dtype_kernels_t *_fast_kernels(object x) noexcept:
    """The kernels for ``x`` if the fast path can take it as input, else NULL:
    contiguous arrays, and 1-D ones with any stride (x[::2], x[::-1])."""
    cdef ndarray a
    cdef int flags, t
    if type(x) is not ndarray:
        return NULL
    a = <ndarray>x
    flags = PyArray_FLAGS(a)
    if not (flags & cnp.NPY_ARRAY_ALIGNED) or not (flags & CONTIGUOUS or PyArray_NDIM(a) == 1):
        return NULL
    t = PyArray_TYPE(a)
    if t < 0 or t >= NPY_NTYPES_LEGACY or KERNELS[t].unary[OP_RELU] == NULL:
        return NULL
    if not PyArray_ISNOTSWAPPED(a):
        return NULL
    return &KERNELS[t]


cdef inline npy_intp _stride(ndarray a, npy_intp itemsize) noexcept:
    """The byte step between elements of a fast-path input (contiguous or 1-D)."""
    return PyArray_STRIDES(a)[0] if PyArray_NDIM(a) == 1 else itemsize


cdef inline bint _same_layout(ndarray a, ndarray b) noexcept:
    """Same type, shape and contiguous element order (so the same flat index)."""
    cdef int fa = PyArray_FLAGS(a), fb = PyArray_FLAGS(b), nd = PyArray_NDIM(a)
    if PyArray_TYPE(a) != PyArray_TYPE(b) or nd != PyArray_NDIM(b):
        return False
    # (0-d arrays have no dims pointer: memcmp must not see NULL, even for 0 bytes)
    if nd and memcmp(PyArray_DIMS(a), PyArray_DIMS(b), nd * sizeof(npy_intp)) != 0:
        return False
    return bool(fa & fb & CONTIGUOUS)


cdef inline bint _apart_or_same(ndarray a, ndarray b, npy_intp nbytes) noexcept:
    """The memory of a and b is either disjoint or exactly the same."""
    cdef char *pa = <char *>PyArray_DATA(a)
    cdef char *pb = <char *>PyArray_DATA(b)
    return pa == pb or pa + nbytes <= pb or pb + nbytes <= pa


cdef inline bint _fast_out(object out, ndarray x, object g, npy_intp itemsize) noexcept:
    """``out`` can take the fast path's result for input x (and g)."""
    cdef ndarray o
    cdef npy_intp nbytes = PyArray_SIZE(x) * itemsize
    if type(out) is not ndarray:
        return False
    o = <ndarray>out
    if (PyArray_FLAGS(o) & (cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_ALIGNED)
            != (cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_ALIGNED)):
        return False
    if not PyArray_ISNOTSWAPPED(o) or not _same_layout(x, o):
        return False
    if not _apart_or_same(x, o, nbytes):
        return False
    return g is None or _apart_or_same(<ndarray>g, o, nbytes)


from fastrelu import _api   # the general path; it uses the ufuncs defined below

cdef object _SLOW = object()   # "take the general path" (the fast path declined)


cdef inline object _fast_unary(int op, object x, object out, const void *consts):
    """out = op(x) on the fast path, or _SLOW. ``consts`` NULL: the dtype's own."""
    cdef const dtype_kernels_t *d = _fast_kernels(x)
    cdef call_t k
    if d == NULL or d.unary[op] == NULL:
        return _SLOW
    if out is None:
        out = new_like(<ndarray>x, cnp.NPY_KEEPORDER, NULL, 0)
    elif not _fast_out(out, <ndarray>x, None, d.itemsize):
        return _SLOW
    _set_unary(&k, d, d.unary[op], d.relu_stream if op == OP_RELU else NULL,
               consts if consts != NULL else <const void *>d.consts,
               <char *>PyArray_DATA(<ndarray>x), _stride(<ndarray>x, d.itemsize),
               <char *>PyArray_DATA(<ndarray>out), d.itemsize)
    _execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return out


cdef inline object _fast_inplace(int op, object x, const void *consts):
    """x[...] = op(x) on the fast path (returns x), or _SLOW."""
    cdef const dtype_kernels_t *d = _fast_kernels(x)
    cdef call_t k
    if (d == NULL or d.unary[op] == NULL
            or not (PyArray_FLAGS(<ndarray>x) & cnp.NPY_ARRAY_WRITEABLE)):
        return _SLOW
    _set_unary(&k, d, d.unary[op], NULL,
               consts if consts != NULL else <const void *>d.consts,
               <char *>PyArray_DATA(<ndarray>x), _stride(<ndarray>x, d.itemsize),
               <char *>PyArray_DATA(<ndarray>x), _stride(<ndarray>x, d.itemsize))
    _execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return x


cdef inline object _fast_binary(int op, object g, object x, object out, const void *consts):
    """out = op(g, x) on the fast path, or _SLOW."""
    cdef const dtype_kernels_t *d = _fast_kernels(x)
    cdef call_t k
    if (d == NULL or d.binary[op] == NULL or _fast_kernels(g) == NULL
            or not _same_layout(<ndarray>x, <ndarray>g)):
        return _SLOW
    if out is None:
        out = new_like(<ndarray>x, cnp.NPY_KEEPORDER, NULL, 0)
    elif not _fast_out(out, <ndarray>x, g, d.itemsize):
        return _SLOW
    _set_binary(&k, d, d.binary[op], consts if consts != NULL else <const void *>d.consts,
                <char *>PyArray_DATA(<ndarray>g), d.itemsize,
                <char *>PyArray_DATA(<ndarray>x), d.itemsize,
                <char *>PyArray_DATA(<ndarray>out), d.itemsize)
    _execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return out


cdef inline slope_t _slope(object negative_slope) except *:
    cdef slope_t s
    s.d = negative_slope      # TypeError for anything that is not a real number
    s.f = <float>s.d
    return s


def relu(x, /, out=None):
    """Rectified linear unit, elementwise: ``x`` where ``x > 0``, else 0.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype: float16, float32, float64, (u)int8, (u)int16,
        (u)int32 or (u)int64. Any shape, layout and byte order.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype to store the result in. May be
        ``x`` itself; any other overlap with ``x`` is resolved by copying.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype and shape (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, or ``out`` not an ndarray or of another dtype.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    Equivalent NumPy: ``np.where(x > 0, x, 0)``, except that NaN is kept (with
    its payload) and the result is never ``-0.0``. Exactly:
    ``0 if x <= 0 else x`` (so NaN -> NaN, -0.0 -> +0.0, -inf -> 0).

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu(np.array([-2.0, -0.0, 0.5, np.nan]))
    array([0. , 0. , 0.5, nan])
    """
    r = _fast_unary(OP_RELU, x, out, NULL)
    return _api.relu(x, out) if r is _SLOW else r


def relu_(x, /):
    """Rectified linear unit, in place: ``x[...] = relu(x)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype (see `relu`); any view, contiguous or
        strided, in any byte order.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype.
    ValueError
        ``x`` is read-only.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-1, 0, 3], dtype=np.int8)
    >>> fastrelu.relu_(a) is a, a
    (True, array([0, 0, 3], dtype=int8))
    """
    r = _fast_inplace(OP_RELU, x, NULL)
    return _api.relu_(x) if r is _SLOW else r


def relu_grad(x, /, out=None):
    """Derivative of ReLU, elementwise: 1 where ``x > 0``, else 0.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`): the ReLU input or its output
        (the mask is the same).
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result.

    Returns
    -------
    ndarray
        Ones and zeros of ``x``'s dtype (``out`` when given). The gradient at
        exactly 0 is 0, and at NaN it is 0.

    Raises
    ------
    TypeError, ValueError
        As for `relu`.

    Notes
    -----
    Equivalent NumPy: ``(x > 0).astype(x.dtype)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu_grad(np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32))
    array([0., 0., 1., 0.], dtype=float32)
    """
    r = _fast_unary(OP_RELU_GRAD, x, out, NULL)
    return _api.relu_grad(x, out) if r is _SLOW else r


def relu_backward(grad_output, x, /, out=None):
    """Fused ReLU backward in one pass: ``grad_output`` where ``x > 0``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the ReLU output.
    x : array_like
        The ReLU input, or its output (the mask ``x > 0`` is the same, so a
        forward done in place with `relu_` works). Same shape and dtype as
        ``grad_output``.
    out : ndarray, optional
        Writable array of that shape and dtype for the result; may be
        ``grad_output`` or ``x`` itself.

    Returns
    -------
    ndarray
        The gradient with respect to the ReLU input (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, ``grad_output`` and ``x`` of different dtypes, or a
        bad ``out``.
    ValueError
        ``grad_output`` and ``x`` of different shapes, or a bad ``out``.

    Notes
    -----
    A selection, not a product: where ``x <= 0`` (or NaN) the result is exactly
    0 even if the gradient is inf or NaN. Equivalent NumPy:
    ``np.where(x > 0, grad_output, 0)``; unlike ``grad_output * (x > 0)`` it
    makes one pass and no temporary.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> g = np.array([10.0, np.inf, 30.0])
    >>> fastrelu.relu_backward(g, np.array([1.0, -1.0, 0.0]))
    array([10.,  0.,  0.])
    """
    r = _fast_binary(OP_RELU_BACKWARD, grad_output, x, out, NULL)
    return _api.relu_backward(grad_output, x, out) if r is _SLOW else r


def relu6(x, /, out=None):
    """ReLU clipped at 6, elementwise: ``min(max(x, 0), 6)``, NaN kept.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`); any shape, layout and byte order.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As for `relu`.

    Notes
    -----
    Exactly: ``0 if x <= 0 else (6 if x >= 6 else x)``; NaN stays NaN (with its
    payload), -0.0 -> +0.0, +inf -> 6. Equivalent NumPy (but for NaN and -0.0):
    ``np.clip(x, 0, 6)``. Used by MobileNet-style networks, whose activations
    must fit a fixed-point range.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6(np.array([-1.0, 3.0, 7.5, np.inf]))
    array([0., 3., 6., 6.])
    """
    r = _fast_unary(OP_RELU6, x, out, NULL)
    return _api.relu6(x, out) if r is _SLOW else r


def relu6_(x, /):
    """ReLU6 in place: ``x[...] = relu6(x)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype; any view.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype.
    ValueError
        ``x`` is read-only.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-3, 2, 9], dtype=np.int16)
    >>> fastrelu.relu6_(a)
    array([0, 2, 6], dtype=int16)
    """
    r = _fast_inplace(OP_RELU6, x, NULL)
    return _api.relu6_(x) if r is _SLOW else r


def relu6_backward(grad_output, x, /, out=None):
    """ReLU6 backward in one pass: ``grad_output`` where ``0 < x < 6``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the ReLU6 output.
    x : array_like
        The ReLU6 input or its output (the mask ``0 < x < 6`` is the same).
        Same shape and dtype as ``grad_output``.
    out : ndarray, optional
        Writable array of that shape and dtype for the result.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given). A
        selection: 0 exactly where the mask is off, also for inf/NaN gradients.

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward`.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6_backward(np.ones(4), np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 1., 0., 0.])
    """
    r = _fast_binary(OP_RELU6_BACKWARD, grad_output, x, out, NULL)
    return _api.relu6_backward(grad_output, x, out) if r is _SLOW else r


def leaky_relu(x, /, negative_slope=0.01, out=None):
    """Leaky ReLU, elementwise: ``x`` where ``x > 0``, else ``negative_slope * x``.

    Leaky ReLU is the standard answer to the "dying ReLU" problem: a unit whose
    input stays negative gets zero gradient from `relu` and stops learning; the
    small slope keeps a gradient flowing.

    Parameters
    ----------
    x : array_like
        Input of dtype float16, float32 or float64 (float16 is computed in
        float32 and rounded, as PyTorch does). Any shape, layout, byte order.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01). Used as float32 for float16 and
        float32 input, as float64 for float64 input.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, a non-real ``negative_slope``, or a
        bad ``out``.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    Exactly as PyTorch: ``x if x > 0 else x * negative_slope`` in IEEE
    arithmetic, so NaN propagates, -0.0 stays -0.0 and -inf * slope is -inf.
    Equivalent NumPy: ``np.where(x > 0, x, x * negative_slope)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu(np.array([-2.0, 0.0, 3.0]), negative_slope=0.1)
    array([-0.2,  0. ,  3. ])
    """
    cdef slope_t s = _slope(negative_slope)
    r = _fast_unary(OP_LEAKY, x, out, &s)
    return _api.leaky_relu(x, s.d, out) if r is _SLOW else r


def leaky_relu_(x, /, negative_slope=0.01):
    """Leaky ReLU in place: ``x[...] = leaky_relu(x, negative_slope)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable float16/float32/float64 array; any view.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01).

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or not of a float dtype.
    ValueError
        ``x`` is read-only.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-10.0, 5.0], dtype=np.float32)
    >>> fastrelu.leaky_relu_(a, 0.5)
    array([-5.,  5.], dtype=float32)
    """
    cdef slope_t s = _slope(negative_slope)
    r = _fast_inplace(OP_LEAKY, x, &s)
    return _api.leaky_relu_(x, s.d) if r is _SLOW else r


def leaky_relu_backward(grad_output, x, /, negative_slope=0.01, out=None):
    """Leaky ReLU backward in one pass: ``grad_output`` where ``x > 0``, else
    ``negative_slope * grad_output``.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the leaky ReLU output.
    x : array_like
        The leaky ReLU input; with ``negative_slope > 0`` also its output (the
        sign is the same). Same shape and float dtype as ``grad_output``.
    negative_slope : float, optional
        The slope used in the forward pass (default 0.01).
    out : ndarray, optional
        Writable array of that shape and dtype for the result.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward`; float dtypes only.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), 0.1)
    array([0.1, 0.1, 1. ])
    """
    cdef slope_t s = _slope(negative_slope)
    r = _fast_binary(OP_LEAKY_BACKWARD, grad_output, x, out, &s)
    return _api.leaky_relu_backward(grad_output, x, s.d, out) if r is _SLOW else r


# --- ufuncs: every other layout, and the NumPy protocol -------------------------------
# NumPy's iterator hands these loops strided, broadcast, byte-swapped (buffered)
# and overlap-resolved operands; the loops run the same kernels and threads.

cdef extern from "<fenv.h>":
    int feclearexcept(int excepts) nogil
    int FE_ALL_EXCEPT

ctypedef struct loop_info_t:
    const dtype_kernels_t *d
    int op
    bint binary


cdef void _unary_loop(char **args, const npy_intp *dims, const npy_intp *steps,
                      void *data) noexcept nogil:
    cdef const loop_info_t *info = <const loop_info_t *>data
    cdef const dtype_kernels_t *d = info.d
    cdef call_t k
    _set_unary(&k, d, d.unary[info.op], d.relu_stream if info.op == OP_RELU else NULL,
               d.consts, args[0], steps[0], args[1], steps[1])
    _execute(&k, dims[0])


cdef void _binary_loop(char **args, const npy_intp *dims, const npy_intp *steps,
                       void *data) noexcept nogil:
    cdef const loop_info_t *info = <const loop_info_t *>data
    cdef const dtype_kernels_t *d = info.d
    cdef call_t k
    _set_binary(&k, d, d.binary[info.op], d.consts, args[0], steps[0], args[1], steps[1],
                args[2], steps[2])
    _execute(&k, dims[0])


cdef inline slope_t _slope_at(const char *p, npy_intp itemsize) noexcept nogil:
    # the slope operand is float64 for float64 loops, float32 otherwise
    cdef slope_t s
    if itemsize == 8:
        s.d = (<const double *>p)[0]
        s.f = <float>s.d
    else:
        s.f = (<const float *>p)[0]
        s.d = s.f
    return s


cdef void _slope_loop(char **args, const npy_intp *dims, const npy_intp *steps,
                      void *data) noexcept nogil:
    """leaky_relu(x, slope) and leaky_relu_backward(g, x, slope): the slope is
    the last input; a scalar (stride 0) runs as one call, an array per element."""
    cdef const loop_info_t *info = <const loop_info_t *>data
    cdef const dtype_kernels_t *d = info.d
    cdef bint binary = info.binary
    cdef int islope = 2 if binary else 1
    cdef npy_intp n = dims[0], i, step = steps[islope]
    cdef npy_intp todo = 1 if step != 0 else n
    cdef slope_t s
    cdef call_t k
    i = 0
    while i < n:
        if step == 0:
            todo = n
        s = _slope_at(args[islope] + i * step, d.itemsize)
        if binary:
            _set_binary(&k, d, d.binary[info.op], &s,
                        args[0] + i * steps[0], steps[0], args[1] + i * steps[1], steps[1],
                        args[3] + i * steps[3], steps[3])
        else:
            _set_unary(&k, d, d.unary[info.op], NULL, &s, args[0] + i * steps[0], steps[0],
                       args[2] + i * steps[2], steps[2])
        _execute(&k, todo)
        i += todo
    # x * slope may raise IEEE flags (underflow, or overflow for |slope| > 1);
    # fastrelu's policy is no FP warnings on any path, as on the fast path.
    feclearexcept(FE_ALL_EXCEPT)


cdef enum:
    MAX_LOOPS = 16   # len(SUPPORTED_DTYPES) is 13 on common platforms
    N_UFUNCS = 7
    MAX_ARGS = 4

cdef PyUFuncGenericFunction _funcs[N_UFUNCS][MAX_LOOPS]
cdef void *_data[N_UFUNCS][MAX_LOOPS]
cdef loop_info_t _info[N_UFUNCS][MAX_LOOPS]
cdef char _types[N_UFUNCS][MAX_LOOPS * MAX_ARGS]
_UFUNC_TEXT = []     # keeps the names and docs alive: NumPy keeps the pointers


cdef object _make_ufunc(int u, str name, str doc, PyUFuncGenericFunction loop, int nin,
                        dtypes, int op, bint slope, bint binary):
    cdef int i, j, nargs = nin + 1
    assert len(dtypes) <= MAX_LOOPS and nargs <= MAX_ARGS
    for i, dt in enumerate(dtypes):
        _info[u][i].d = &KERNELS[dt.num]
        _info[u][i].op = op
        _info[u][i].binary = binary
        _funcs[u][i] = loop
        _data[u][i] = &_info[u][i]
        for j in range(nargs):
            _types[u][nargs * i + j] = dt.num
        if slope:   # the slope operand: float64 for float64, else float32
            _types[u][nargs * i + nin - 1] = (np.dtype(np.float64) if dt.itemsize == 8
                                              else np.dtype(np.float32)).num
    text = (name.encode(), doc.encode())
    _UFUNC_TEXT.append(text)
    return new_ufunc(_funcs[u], _data[u], _types[u], len(dtypes), nin, 1, PyUFunc_None,
                     text[0], text[1], 0)


ufunc_relu = _make_ufunc(
    0, "relu", "relu(x, /, out=None, *, where=True, ...)\n\nReLU as a NumPy ufunc: "
    "0 if x <= 0 else x (NaN kept, -0.0 -> +0.0).", _unary_loop, 1, SUPPORTED_DTYPES,
    OP_RELU, False, False)
ufunc_relu_grad = _make_ufunc(
    1, "relu_grad", "relu_grad(x, /, out=None, ...)\n\nReLU derivative as a NumPy "
    "ufunc: 1 where x > 0, else 0.", _unary_loop, 1, SUPPORTED_DTYPES, OP_RELU_GRAD, False, False)
ufunc_relu_backward = _make_ufunc(
    2, "relu_backward", "relu_backward(grad_output, x, /, out=None, ...)\n\nFused ReLU "
    "backward as a NumPy ufunc: grad_output where x > 0, else 0.", _binary_loop, 2,
    SUPPORTED_DTYPES, OP_RELU_BACKWARD, False, True)
ufunc_relu6 = _make_ufunc(
    3, "relu6", "relu6(x, /, out=None, ...)\n\nReLU6 as a NumPy ufunc: "
    "0 if x <= 0, 6 if x >= 6, else x (NaN kept).", _unary_loop, 1, SUPPORTED_DTYPES,
    OP_RELU6, False, False)
ufunc_relu6_backward = _make_ufunc(
    4, "relu6_backward", "relu6_backward(grad_output, x, /, out=None, ...)\n\nReLU6 "
    "backward as a NumPy ufunc: grad_output where 0 < x < 6, else 0.", _binary_loop, 2,
    SUPPORTED_DTYPES, OP_RELU6_BACKWARD, False, True)
ufunc_leaky_relu = _make_ufunc(
    5, "leaky_relu", "leaky_relu(x, negative_slope, /, out=None, ...)\n\nLeaky ReLU "
    "as a NumPy ufunc: x if x > 0 else x * negative_slope (float dtypes).", _slope_loop,
    2, FLOAT_DTYPES, OP_LEAKY, True, False)
ufunc_leaky_relu_backward = _make_ufunc(
    6, "leaky_relu_backward", "leaky_relu_backward(grad_output, x, negative_slope, /, "
    "out=None, ...)\n\nLeaky ReLU backward as a NumPy ufunc: grad_output if x > 0 "
    "else grad_output * negative_slope.", _slope_loop, 3, FLOAT_DTYPES,
    OP_LEAKY_BACKWARD, True, True)


# --- the C-level API (fastrelu.kernels) ------------------------------------------------

cdef void _run_unary(int op, int typenum, const char *x, char *out, npy_intp n,
                     const void *consts) noexcept nogil:
    cdef const dtype_kernels_t *d = &KERNELS[typenum]
    cdef call_t k
    _set_unary(&k, d, d.unary[op], d.relu_stream if op == OP_RELU else NULL,
               consts if consts != NULL else <const void *>d.consts,
               x, d.itemsize, out, d.itemsize)
    _execute(&k, n)


cdef void _run_binary(int op, int typenum, const char *g, const char *x, char *out,
                      npy_intp n, const void *consts) noexcept nogil:
    cdef const dtype_kernels_t *d = &KERNELS[typenum]
    cdef call_t k
    _set_binary(&k, d, d.binary[op], consts if consts != NULL else <const void *>d.consts,
                g, d.itemsize, x, d.itemsize, out, d.itemsize)
    _execute(&k, n)


cdef c_api_t C_API
C_API.run_unary = _run_unary
C_API.run_binary = _run_binary


def c_api():
    """The dispatcher for fastrelu.kernels, as a PyCapsule (private)."""
    return PyCapsule_New(&C_API, b"fastrelu.c_api", NULL)


# --- build information ----------------------------------------------------------------

def build_info():
    """What this build is and what it runs: a dict (see ``fastrelu.show_config``)."""
    return {
        "isa": TABLE.isa.decode(),
        "isa_cflags": TABLE.cflags.decode(),
        "isa_levels_supported": supported_isa_levels(),
        "compiler": fr_compiler_version.decode(),
        "threads": "fastrelu pool (default count from OpenMP settings)",
        "num_threads": get_num_threads(),
        "parallel_min_bytes": PARALLEL_MIN_BYTES,
        "stream_min_bytes": STREAM_MIN_BYTES,
    }
