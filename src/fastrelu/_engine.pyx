"""The engine: the dtype table, the instruction-set choice, the thread policy
and the executor that every path runs its calls through.

The public functions' fast path (``_functions``), the ufunc loops
(``_ufuncs``) and the Cython API (``kernels``) all build a ``call_t`` (the
loop, its operands, its constants) and hand it to `execute`, which decides in
one place whether the call streams its output, how many threads it uses, and
keeps the caller's IEEE flags for operations that do float arithmetic. Those
modules reach the engine by ``cimport`` (``_engine.pxd``).
"""
cimport cython
cimport numpy as cnp
from numpy cimport npy_intp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.string cimport memcpy
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

from fastrelu._loops cimport (consts_t, kernel_fn, loop_table_t, N_SLOTS, K_POS, K_FLIP,
                              K_P0)
from fastrelu._ops cimport N_OPS

import importlib
import os
import platform
import warnings

import numpy as np

from fastrelu._registry import OPS, PARAM_KINDS, DTYPE_SETS, ML_DTYPE_NAMES

cnp.import_array()


cdef extern from "numpy/arrayobject.h":
    enum:
        NPY_NTYPES_LEGACY

cdef extern from "<fenv.h>":
    ctypedef struct fexcept_t:
        pass
    ctypedef struct fenv_t:
        pass
    int fegetenv(fenv_t *envp) nogil
    int fesetenv(const fenv_t *envp) nogil
    int fegetexceptflag(fexcept_t *flagp, int excepts) nogil
    int fesetexceptflag(const fexcept_t *flagp, int excepts) nogil
    int FE_ALL_EXCEPT

cdef extern from "_runtime.h":
    int fr_cpu_level() noexcept nogil
    int fr_register_atfork() noexcept nogil
    int fr_default_threads() noexcept nogil
    bint fr_in_parallel() noexcept nogil
    bint FR_OPENMP
    void fastrelu_set_default_threads(int n) noexcept nogil
    ctypedef void (*fr_chunk_fn)(void *ctx, npy_intp start, npy_intp stop) noexcept nogil
    void fr_pool_run(fr_chunk_fn fn, void *ctx, npy_intp n, npy_intp chunk,
                     int threads, long long spin_until) noexcept nogil
    bint fr_pool_hot(long long *now) noexcept nogil
    void fr_pool_note_end() noexcept nogil
    bint fr_team_acquire() noexcept nogil
    enum:
        FR_POOL_MAX_WORKERS
    void fr_team_release() noexcept nogil
    long long fr_pool_spin_ns
    const char *fr_compiler_version


# --- the dtype table: one row per NumPy type number ------------------------------

cdef row_t ROWS[NPY_NTYPES_LEGACY]
cdef op_info_t OP_INFO[N_OPS]
# the rows of the ml_dtypes dtypes, whose type numbers NumPy assigns at run time
cdef enum:
    MAX_ML = 4
cdef row_t ML_ROWS[MAX_ML]
cdef int ML_TYPENUMS[MAX_ML]
cdef int N_ML = 0


def _ml_dtypes():
    """The dtypes of ``ml_dtypes`` that fastrelu takes (`ML_DTYPE_NAMES`), when
    that optional package is installed; () otherwise."""
    try:
        import ml_dtypes
    except ImportError:
        return ()
    return tuple(np.dtype(getattr(ml_dtypes, name)) for name in ML_DTYPE_NAMES
                 if hasattr(ml_dtypes, name))


#: The ml_dtypes dtypes the operations with ``Op.ml`` take (empty without ml_dtypes).
ML_DTYPES = _ml_dtypes()

#: The dtypes the loops accept, in native byte order: every integer type
#: number (the platform aliases such as ``longlong`` included) and the floats.
SUPPORTED_DTYPES = tuple({dt.num: dt for dt in map(np.dtype, np.typecodes["AllInteger"] + "efd")}.values())
#: The dtypes each registry dtype set stands for (``"all"``, ``"float"``),
#: platform aliases included.
DTYPES = {key: tuple(dt for dt in SUPPORTED_DTYPES if np.dtype(dt.name).name in names)
          for key, names in DTYPE_SETS.items()}
#: The dtypes each operation takes, by name: its registry dtype set, and the
#: ml_dtypes dtypes where ``Op.ml`` (when installed).
OP_DTYPES = {spec.name: DTYPES[spec.dtypes] + (ML_DTYPES if spec.ml else ()) for spec in OPS}
# the table column of each dtype: integers by name, floats after them (_loops.pxd)
_SLOTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", *ML_DTYPE_NAMES)
assert len(_SLOTS) == N_SLOTS


def is_float(dt):
    """A float dtype: NumPy's, or one of `ML_DTYPES` (kind "V" to NumPy)."""
    return dt.kind == "f" or dt in ML_DTYPES


def _dtype_consts(dt):
    """{NEG, POS, ONE, SIX, FLIP} of ``dt`` as bytes in its width (_loops.pxd):
    for a float, NEG and POS are -inf and +inf, or the largest finite values
    for a format without infinity (float8_e4m3fn)."""
    unsigned = np.dtype(f"u{dt.itemsize}")
    if is_float(dt):
        with np.errstate(invalid="ignore"):
            no_inf = np.isnan(np.array(np.inf, dtype=dt).astype(np.float32))
        big = float(np.array(0x7e, np.uint8).view(dt).astype(np.float32)) if no_inf else np.inf
        values = np.array([-big, big, 1, 6, 0], dtype=dt).view(unsigned)
        values[4] = (1 << (8 * dt.itemsize - 1)) - 1   # every bit but the sign
    else:
        values = np.array([0, np.iinfo(dt).max, 1, 6, 0], dtype=dt).view(unsigned)
    return values.tobytes()


cdef void _fill_rows(const loop_table_t *t) except *:
    cdef row_t *row
    cdef bytes consts
    cdef int op, slot
    global N_ML
    N_ML = 0
    for dt in SUPPORTED_DTYPES + ML_DTYPES:
        if dt in ML_DTYPES:
            ML_TYPENUMS[N_ML] = dt.num
            row = &ML_ROWS[N_ML]
            N_ML += 1
        else:
            row = &ROWS[dt.num]
        slot = _SLOTS.index(dt.name)
        for op, spec in enumerate(OPS):
            row.fn[op] = t.fn[op][slot] if dt in OP_DTYPES[spec.name] else NULL
        row.itemsize = dt.itemsize
        row.typenum = dt.num
        row.kind = ord("f") if is_float(dt) else ord(dt.kind)
        if not is_float(dt):
            row.int_min = int(np.iinfo(dt).min)
            row.int_max = min(int(np.iinfo(dt).max), 2**63 - 1)
        consts = _dtype_consts(dt)
        memcpy(row.consts.bits_storage, <const char *>consts, len(consts))


cdef void _fill_op_info() except *:
    cdef op_info_t *info
    for op, spec in enumerate(OPS):
        info = &OP_INFO[op]
        info.nin = spec.arity
        info.nparams = len(spec.params)
        for i, p in enumerate(spec.params):
            info.param_kind[i] = PARAM_KINDS.index(p.kind)
        info.streams = spec.streams
        info.real = spec.family == "real"


_fill_op_info()


cdef const row_t *row_for(int typenum) noexcept nogil:
    """The row of NumPy type number ``typenum``, or NULL if unsupported."""
    cdef int i
    if typenum >= NPY_NTYPES_LEGACY:
        for i in range(N_ML):
            if ML_TYPENUMS[i] == typenum:
                return &ML_ROWS[i]
        return NULL
    if typenum < 0 or ROWS[typenum].itemsize == 0:
        return NULL
    return &ROWS[typenum]


cdef const op_info_t *op_info(int op) noexcept nogil:
    return &OP_INFO[op]


# --- parameters ----------------------------------------------------------------------

cdef inline void _store_signed(char *p, npy_intp v, npy_intp itemsize) noexcept nogil:
    if itemsize == 1:
        (<int8_t *>p)[0] = <int8_t>v
    elif itemsize == 2:
        (<int16_t *>p)[0] = <int16_t>v
    elif itemsize == 4:
        (<int32_t *>p)[0] = <int32_t>v
    else:
        (<int64_t *>p)[0] = <int64_t>v


cdef inline npy_intp _signed_at(const char *p, npy_intp itemsize) noexcept nogil:
    if itemsize == 1:
        return (<const int8_t *>p)[0]
    if itemsize == 2:
        return (<const int16_t *>p)[0]
    if itemsize == 4:
        return (<const int32_t *>p)[0]
    return (<const int64_t *>p)[0]


cdef void set_param(consts_t *c, const row_t *d, int kind, int index,
                    const char *value) noexcept nogil:
    """Store parameter ``index`` of a call in ``c``. ``value`` points to a double
    (PARAM_SLOPE) or to a value of the row's dtype, already cast (_general)."""
    cdef npy_intp size = d.itemsize, s, flip, pos
    cdef char *slot
    cdef double slope
    if kind == PARAM_SLOPE:
        slope = (<const double *>value)[0]
        c.slope_d = slope
        c.slope_f = <float>slope
        return
    slot = <char *>c.bits_storage + (K_P0 + index) * size
    if kind == PARAM_VALUE:
        memcpy(slot, value, size)
        return
    # PARAM_BOUND: stored as its order key (_loops.pxi: order_key); for floats,
    # -0.0 as +0.0 (they compare equal) and NaN as the largest key (nothing is
    # greater than NaN).
    s = _signed_at(value, size)
    flip = _signed_at(<const char *>d.consts.bits_storage + K_FLIP * size, size)
    if flip != 0:                                     # a float (integers: their own key)
        pos = _signed_at(<const char *>d.consts.bits_storage + K_POS * size, size)
        if (s & flip) > pos:
            s = flip                                  # NaN: the largest key
        elif (s & flip) == 0:
            s = 0                                     # -0.0 and +0.0
        elif s < 0:
            s = s ^ flip                              # s is sign-extended: flip the magnitude
    _store_signed(slot, s, size)


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


cdef loop_table_t TABLE


cdef void _load_isa(str level) except *:
    global TABLE
    module = importlib.import_module(f"fastrelu._loops_{level}")
    TABLE = (<loop_table_t *>PyCapsule_GetPointer(module.loop_table(),
                                                 b"fastrelu.loop_table"))[0]
    _fill_rows(&TABLE)


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
# Threads: a call of PARALLEL_MIN_BYTES or more uses them when it comes right
# after another large call (the team is awake: a 1 MB relu took 7.5 us on two
# threads, 18 us on one), and from COLD_PARALLEL_MIN_BYTES on in any case.
# Below that, a call after a pause runs on its own thread: waking a sleeping
# worker and meeting a core busy with the BLAS next door cost more than they
# save (a 1 MiB relu after a pause: 30 us on two threads, 19 us on one;
# threaded 400 KB activations made a scikit-learn MLP's fit 2.1x slower).
cdef npy_intp PARALLEL_MIN_BYTES = 1 << 18   # split across threads (hot calls)
cdef npy_intp COLD_PARALLEL_MIN_BYTES = 1 << 22   # ... any call
cdef npy_intp STREAM_MIN_BYTES = 1 << 25     # non-temporal stores (out of place),
                                             # by bytes read; 3/4 of the LLC, below
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


# Streaming pays once the bytes a call reads (all its inputs) reach about 3/4
# of the last-level cache: then the output would only evict the inputs of the
# next call. Measured with float32 on the 32 MiB L3 of the development VM
# (plain vs streaming stores, out=): relu reading 22 MiB 510 vs 568 us, 26 MiB
# 726 vs 707 us; relu_backward reading 20 MiB 277 vs 281 us, 24 MiB 445 vs
# 372 us, 38 MiB 994 vs 745 us. (The output size alone, the rule before, left
# the backward ops of 11 to 32 MiB outputs up to 25% slow.)
STREAM_MIN_BYTES = (_last_level_cache_bytes() or STREAM_MIN_BYTES) * 3 // 4

if fr_register_atfork() != 0:
    raise ImportError("fastrelu: pthread_atfork failed")

cdef int _threads = 0                        # 0: follow OpenMP (OMP_NUM_THREADS, threadpoolctl)


def thresholds(nogil_min_bytes=None, parallel_min_bytes=None, stream_min_bytes=None,
               spin_ns=None, cold_parallel_min_bytes=None):
    """Read, and optionally set, the size thresholds (bytes) of the dispatcher.

    Private: for calibration scripts and for tests that must reach the
    threaded and streaming paths with small arrays. Returns the previous values.
    """
    global NOGIL_MIN_BYTES, PARALLEL_MIN_BYTES, STREAM_MIN_BYTES, fr_pool_spin_ns
    global COLD_PARALLEL_MIN_BYTES
    previous = {"nogil_min_bytes": NOGIL_MIN_BYTES,
                "parallel_min_bytes": PARALLEL_MIN_BYTES,
                "stream_min_bytes": STREAM_MIN_BYTES,
                "spin_ns": fr_pool_spin_ns,
                "cold_parallel_min_bytes": COLD_PARALLEL_MIN_BYTES}
    if cold_parallel_min_bytes is not None:
        COLD_PARALLEL_MIN_BYTES = max(1, cold_parallel_min_bytes)
    if spin_ns is not None:
        fr_pool_spin_ns = max(0, spin_ns)
    if nogil_min_bytes is not None:
        NOGIL_MIN_BYTES = max(0, nogil_min_bytes)
    if parallel_min_bytes is not None:
        PARALLEL_MIN_BYTES = max(1, parallel_min_bytes)
    if stream_min_bytes is not None:
        STREAM_MIN_BYTES = max(0, stream_min_bytes)
    return previous


cdef extern from *:
    """
    /* with fastrelu.num_threads(n): an override for the calling thread only
       (0: none; -1: the default count; n > 0: n threads) */
    static _Thread_local int fr_local_threads = 0;
    """
    int fr_local_threads


def _available_cpus():
    """The CPUs this process may run on: its affinity mask, and its cgroup's CPU
    quota (containers), whichever is smaller."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            with open(path) as f:
                fields = f.read().split()
            if path.endswith("cpu.max"):
                quota, period = fields[0], fields[1]
            else:
                with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                    quota, period = fields[0], f.read().strip()
            if quota not in ("max", "-1") and int(period) > 0:
                cpus = min(cpus, max(1, -(-int(quota) // int(period))))
            break
        except (OSError, ValueError, IndexError):
            continue
    return max(1, cpus)


def _thread_cap():
    """The most threads a call uses: the CPUs available to the process,
    OMP_THREAD_LIMIT when set, and the team's own maximum."""
    cap = min(_available_cpus(), FR_POOL_MAX_WORKERS + 1)
    limit = os.environ.get("OMP_THREAD_LIMIT", "").strip()
    if limit.isdigit() and int(limit) > 0:
        cap = min(cap, int(limit))
    return cap


#: See `_thread_cap` (measured: 64 threads on the 2 cores of the development
#: VM made the slowest calls 20x slower than one thread).
THREAD_CAP = _thread_cap()
cdef int _cap = THREAD_CAP

#: Whether this build links OpenMP, which then gives the default thread count.
#: Without it (no omp.h, as with Apple clang) the default is read here from
#: OMP_NUM_THREADS, as OpenMP reads it (the first number of a list), else the
#: CPUs available; threadpoolctl changes it through fastrelu._threadpoolctl.
OPENMP = bool(FR_OPENMP)


def _omp_num_threads():
    """OMP_NUM_THREADS's first entry when it is a positive integer, else None."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


if not OPENMP:
    fastrelu_set_default_threads(_omp_num_threads() or _available_cpus())


cdef inline int _requested() noexcept nogil:
    """The thread count asked for: this thread's num_threads block, else
    set_num_threads, else the default (OMP_NUM_THREADS, threadpoolctl)."""
    if fr_local_threads > 0:
        return fr_local_threads
    if fr_local_threads == 0 and _threads > 0:
        return _threads
    return fr_default_threads()


def get_num_threads():
    """Number of threads a large call uses: the count asked for (a
    ``num_threads`` block of this thread, else ``set_num_threads``, else
    OpenMP's current maximum, which follows ``OMP_NUM_THREADS`` and
    ``threadpoolctl.threadpool_limits``), at most `THREAD_CAP`."""
    return max(1, min(_requested(), _cap))


def swap_threads(int n):
    """Set the process-wide thread count (0: the default) and return the previous one."""
    global _threads
    previous, _threads = _threads, n
    return previous


def swap_local_threads(int n):
    """Set this thread's override (0: none, -1: the default count, n > 0) and
    return the previous one (``fastrelu.num_threads``)."""
    global fr_local_threads
    previous = fr_local_threads
    fr_local_threads = n
    return previous



cdef npy_intp nogil_min_bytes() noexcept nogil:
    return NOGIL_MIN_BYTES


cdef inline int _team_size(npy_intp nbytes, bint hot) noexcept nogil:
    """Threads for a call of ``nbytes`` output bytes; >1 means the team is held."""
    cdef int nt = min(_requested(), _cap)
    if not hot and nbytes < COLD_PARALLEL_MIN_BYTES:
        return 1
    # every thread gets at least half the threshold
    nt = <int>min(<npy_intp>nt, 2 * nbytes // PARALLEL_MIN_BYTES)
    if nt <= 1 or fr_in_parallel() or not fr_team_acquire():
        return 1
    return nt


# --- the executor ------------------------------------------------------------------------

cdef inline void _run_chunk(const call_t *k, npy_intp start, npy_intp stop,
                            bint stream=False) noexcept nogil:
    """Elements [start, stop) of the call, with non-temporal stores if ``stream``."""
    cdef char *args[MAX_ARGS]
    cdef int j, nin = k.op.nin
    if start >= stop:
        return
    if k.period:
        _run_periodic(k, start, stop, stream)
        return
    for j in range(nin + 1):
        args[j] = k.args[j] + start * k.steps[j]
    if stream:
        TABLE.stream_run(k.fn, nin, args, k.steps, stop - start, k.consts)
    else:
        k.fn(args, k.steps, stop - start, k.consts)


cdef void _run_periodic(const call_t *k, npy_intp start, npy_intp stop,
                        bint stream) noexcept nogil:
    """[start, stop) of a binary call whose second input repeats (bias_relu):
    element i of the output takes element ``(i // repeat) % period`` of it. Runs
    the loop once per stretch of one bias element (repeat > 1: that element
    at stride 0) or of one period (repeat 1: the bias at its own stride)."""
    cdef char *args[3]
    cdef npy_intp steps[3]
    cdef npy_intp i = start, m, j
    steps[0] = k.steps[0]
    steps[2] = k.steps[2]
    steps[1] = k.itemsize if k.repeat == 1 else 0
    while i < stop:
        if k.repeat == 1:
            j = i % k.period
            m = min(stop - i, k.period - j)
        else:
            j = (i // k.repeat) % k.period
            m = min(stop - i, k.repeat - i % k.repeat)
        args[0] = k.args[0] + i * k.steps[0]
        args[1] = k.args[1] + j * k.itemsize
        args[2] = k.args[2] + i * k.steps[2]
        if stream:
            TABLE.stream_run(k.fn, 2, args, steps, m, k.consts)
        else:
            k.fn(args, steps, m, k.consts)
        i += m


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
    an input that *is* the output: same address and stride, an in-place call),
    or the output overlaps itself (a stride smaller than an element: stride 0)."""
    cdef int j, nin = k.op.nin
    cdef char *out = k.args[nin]
    cdef npy_intp so = k.steps[nin]
    if n <= 1:
        return False
    if -k.itemsize < so < k.itemsize:
        return True
    for j in range(nin):
        if allow_same and k.args[j] == out and k.steps[j] == so:
            continue
        if j == 1 and k.period:        # a repeating input: one period, contiguous
            if not (k.args[j] + k.period * k.itemsize <= min(out, out + (n - 1) * so)
                    or max(out, out + (n - 1) * so) + k.itemsize <= k.args[j]):
                return True
            continue
        if _overlap(k.args[j], k.steps[j], out, so, n, k.itemsize):
            return True
    return False


cdef void _chunk_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    # the pool counts from a boundary ``pad`` elements before the output's start
    cdef const call_t *k = <const call_t *>ctx
    _run_chunk(k, max(start - k.pad, 0), stop - k.pad)


cdef void _stream_chunk_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    cdef const call_t *k = <const call_t *>ctx
    _run_chunk(k, max(start - k.pad, 0), stop - k.pad, True)


ctypedef struct real_job_t:
    call_t *k
    bint stream
    fenv_t env             # the caller's floating-point environment


cdef void _real_chunk_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    # A worker runs a "real" operation in the caller's floating-point modes
    # (rounding, flush-to-zero, denormals-are-zero), so the result does not
    # depend on which thread computed it; its own environment comes back after.
    cdef real_job_t *job = <real_job_t *>ctx
    cdef fenv_t own
    fegetenv(&own)
    fesetenv(&job.env)
    if job.stream:
        _stream_chunk_cb(job.k, start, stop)
    else:
        _chunk_cb(job.k, start, stop)
    fesetenv(&own)


cdef inline bint _streams(const call_t *k, npy_intp n, npy_intp nbytes) noexcept nogil:
    """Non-temporal stores pay off and are safe: an operation that allows them,
    inputs of at least STREAM_MIN_BYTES in all (``nbytes`` of output each), an
    output contiguous, aligned and apart from every input."""
    cdef npy_intp so = k.steps[k.op.nin]
    return (k.op.streams and nbytes * k.op.nin >= STREAM_MIN_BYTES and so == k.itemsize
            and (<size_t>k.args[k.op.nin]) % <size_t>k.itemsize == 0
            and not _shares_memory(k, n, False))


cdef void _execute_plain(call_t *k, npy_intp n) noexcept nogil:
    cdef real_job_t job
    cdef npy_intp nbytes = n * k.itemsize, chunk, moved
    cdef npy_intp so = k.steps[k.op.nin]
    cdef bint stream = _streams(k, n, nbytes)
    cdef bint hot
    cdef long long now
    cdef int nt
    # NumPy hands a ufunc loop operands that overlap when a forward,
    # element-by-element pass is still correct (``out`` trailing an input);
    # splitting such a call across threads is not, nor is splitting an output
    # that overlaps itself (stride 0), so those stay on one thread.
    # the thread thresholds count the bytes the call moves, in units of a
    # unary call's (which read one output's worth): a binary op moves 1.5x
    moved = nbytes * (k.op.nin + 1) // 2
    if moved < PARALLEL_MIN_BYTES or _shares_memory(k, n, True):
        _run_chunk(k, 0, n, stream)
        return
    hot = fr_pool_hot(&now)
    nt = _team_size(moved, hot)
    if nt <= 1:
        _run_chunk(k, 0, n, stream)
        fr_pool_note_end()
        return
    chunk = CHUNK_MIN_BYTES
    while chunk < CHUNK_MAX_BYTES and chunk * 2 <= nbytes // (4 * nt):
        chunk *= 2
    # boundaries aligned in memory for a contiguous output; a strided one starts at 0
    k.pad = ((<size_t>k.args[k.op.nin]) % <size_t>chunk) // k.itemsize if so == k.itemsize else 0
    if k.op.real:
        job.k = k
        job.stream = stream
        fegetenv(&job.env)
        fr_pool_run(_real_chunk_cb, &job, n + k.pad, chunk // k.itemsize, nt,
                    now + fr_pool_spin_ns if hot else 0)
    else:
        fr_pool_run(_stream_chunk_cb if stream else _chunk_cb, k, n + k.pad,
                    chunk // k.itemsize, nt, now + fr_pool_spin_ns if hot else 0)
    fr_pool_note_end()
    fr_team_release()


cdef void execute(call_t *k, npy_intp n) noexcept nogil:
    """Run ``k`` over n elements: streaming stores and threads when large.

    Operations that do float arithmetic ("real") may raise IEEE flags in
    discarded lanes; fastrelu's policy is that no call changes the caller's
    floating-point state (so no NumPy warnings on any path): their flags are
    saved and restored around the call.
    """
    cdef fexcept_t flags
    if k.op.real:
        fegetexceptflag(&flags, FE_ALL_EXCEPT)
        _execute_plain(k, n)
        fesetexceptflag(&flags, FE_ALL_EXCEPT)
    else:
        _execute_plain(k, n)


cdef void execute_gil(call_t *k, npy_intp n) noexcept:
    """`execute` from a caller holding the GIL: released above NOGIL_MIN_BYTES."""
    if n * k.itemsize >= NOGIL_MIN_BYTES:
        with nogil:
            execute(k, n)
    elif k.op.real:
        execute(k, n)
    else:
        _run_chunk(k, 0, n)


def writeable(cnp.ndarray a):
    """The array's WRITEABLE flag, read without NumPy's FutureWarning for the
    views of ``np.broadcast_arrays`` (the write itself warns, as NumPy does)."""
    return cnp.PyArray_ISWRITEABLE(a)


# --- build information ----------------------------------------------------------------

def build_info():
    """What this build is and what it runs: a dict (see ``fastrelu.show_config``)."""
    return {
        "isa": TABLE.isa.decode(),
        "isa_cflags": TABLE.cflags.decode(),
        "isa_levels_supported": supported_isa_levels(),
        "compiler": fr_compiler_version.decode(),
        "openmp": OPENMP,
        "machine": platform.machine(),
        "num_threads": get_num_threads(),
        "thread_cap": THREAD_CAP,
        "parallel_min_bytes": PARALLEL_MIN_BYTES,
        "stream_min_bytes": STREAM_MIN_BYTES,
    }


# --- fused operations ----------------------------------------------------------------------
#
# The operations of fastrelu._fused that are more than one elementwise loop. Each
# runs an elementwise loop of the table (relu, relu_backward, add_relu) tile by
# tile, with the kernel of _fused.h that adds the rest (the packed mask, the
# counts, the bias-gradient sums) on the same tile while it is in L1: one pass
# over memory. The arrays reach these functions validated, C-contiguous and of
# one dtype (fastrelu._fused); tiles are whole bytes of the mask (multiples of 8
# elements) and the thread chunks whole tiles.

from libc.stdlib cimport calloc, free
from libc.string cimport memset
from libc.stdint cimport uint8_t, int32_t
from fastrelu._ops cimport OP_RELU, OP_RELU_BACKWARD, OP_ADD_RELU

cdef extern from *:
    """
    static inline void fr_atomic_add_i64(int64_t *p, int64_t v)
    { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
    """
    void fr_atomic_add_i64(int64_t *p, int64_t v) noexcept nogil

cdef enum:
    # elements per tile: 64 KiB of float32, in L2 while the second kernel
    # reads it back (smaller tiles cost a store fence each when streaming:
    # relu_with_mask at 1e7 float32 took 4.7 ms with 2048, against relu's 2.9)
    TILE = 16384


ctypedef struct tile_job_t:
    call_t k               # the elementwise loop over the whole array
    int slot               # the table column of the dtype
    bint stream
    uint8_t *mask
    int64_t *counts
    npy_intp ncounts
    char *acc              # bias gradient: partial sums [blocks][columns]
    npy_intp accsize
    npy_intp period        # counts, gradient: elements per row / distinct bias elements
    npy_intp repeat        # 1: row layout; > 1: segments of ``repeat`` elements
    npy_intp n             # elements in all
    npy_intp rows_per_block, col_width, col_slices


cdef inline int _column(int typenum):
    return _SLOT_OF[typenum]


cdef int _SLOT_OF[NPY_NTYPES_LEGACY]
for _dt in SUPPORTED_DTYPES:
    _SLOT_OF[_dt.num] = _SLOTS.index(_dt.name)


cdef int _start_job(tile_job_t *job, int op, cnp.ndarray a, cnp.ndarray b,
                    cnp.ndarray out) except -1:
    """The job's elementwise call: op(a[, b]) -> out over every element."""
    cdef const row_t *d = row_for(cnp.PyArray_TYPE(a))
    cdef int nin = op_info(op).nin
    job.k.fn = d.fn[op]
    job.k.op = op_info(op)
    job.k.consts = &d.consts
    job.k.itemsize = d.itemsize
    job.k.period = 0
    job.k.pad = 0
    job.k.args[0] = <char *>cnp.PyArray_DATA(a)
    if nin == 2:
        job.k.args[1] = <char *>cnp.PyArray_DATA(b)
    job.k.args[nin] = <char *>cnp.PyArray_DATA(out)
    for j in range(nin + 1):
        job.k.steps[j] = d.itemsize
    job.slot = _column(cnp.PyArray_TYPE(a))
    job.n = cnp.PyArray_SIZE(a)
    job.stream = _streams(&job.k, job.n, job.n * d.itemsize)
    return 0


cdef void _run_tiles(fr_chunk_fn fn, void *ctx, npy_intp n, npy_intp itemsize,
                     npy_intp moved) noexcept nogil:
    """fn over [0, n) elements on the thread policy of `_execute_plain`
    (``moved`` bytes), in chunks of whole tiles."""
    cdef bint hot
    cdef long long now
    cdef int nt
    cdef npy_intp chunk
    if moved < PARALLEL_MIN_BYTES:
        fn(ctx, 0, n)
        return
    hot = fr_pool_hot(&now)
    nt = _team_size(moved, hot)
    if nt <= 1:
        fn(ctx, 0, n)
        fr_pool_note_end()
        return
    chunk = CHUNK_MIN_BYTES
    while chunk < CHUNK_MAX_BYTES and chunk * 2 <= n * itemsize // (4 * nt):
        chunk *= 2
    fr_pool_run(fn, ctx, n, max(chunk // itemsize, <npy_intp>TILE), nt,
                now + fr_pool_spin_ns if hot else 0)
    fr_pool_note_end()
    fr_team_release()


cdef void _mask_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    cdef tile_job_t *job = <tile_job_t *>ctx
    cdef npy_intp size = job.k.itemsize
    TABLE.fused.run(TABLE.fused.relu_pack[job.slot], size, job.k.args[0] + start * size,
                    NULL, job.k.args[1] + start * size, job.mask, start, stop - start, 0,
                    job.stream, job.k.consts)


def relu_with_mask(cnp.ndarray x, cnp.ndarray y, cnp.ndarray mask):
    """y = relu(x) and mask = the packed bits of x > 0 (C order, little-endian)."""
    cdef tile_job_t job
    _start_job(&job, OP_RELU, x, None, y)
    job.mask = <uint8_t *>cnp.PyArray_DATA(mask)
    with nogil:
        _run_tiles(_mask_cb, &job, job.n, job.k.itemsize, job.n * job.k.itemsize)


cdef void _unmask_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    cdef tile_job_t *job = <tile_job_t *>ctx
    cdef npy_intp size = job.k.itemsize
    TABLE.fused.unmask_run(TABLE.fused.unmask[job.slot], size, job.k.args[0] + start * size,
                           job.mask + start // 8, job.k.args[1] + start * size,
                           stop - start, job.stream)


def relu_backward_mask(cnp.ndarray g, cnp.ndarray mask, cnp.ndarray out):
    """out = g where the mask bit is set, else 0."""
    cdef tile_job_t job
    _start_job(&job, OP_RELU, g, None, out)     # (the loop itself is not run)
    job.mask = <uint8_t *>cnp.PyArray_DATA(mask)
    job.stream = job.n * job.k.itemsize >= STREAM_MIN_BYTES
    with nogil:
        _run_tiles(_unmask_cb, &job, job.n, job.k.itemsize, job.n * job.k.itemsize)


cdef void _counts_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    # Counts go to zeroed counters of this call's own (row layout: int32, the
    # width of a float32 compare; a call covers fewer than 2**31 rows), added to
    # the shared int64 counts at the end (integers: any split gives the same
    # counts). Without memory for them, the call runs in stretches of at most
    # 2**16 elements into counters on the stack.
    cdef tile_job_t *job = <tile_job_t *>ctx
    cdef npy_intp e = start, j, length, size = job.k.itemsize
    cdef npy_intp width = job.ncounts * (sizeof(int32_t) if job.repeat == 1 else sizeof(int64_t))
    cdef char *local = <char *>calloc(1, width)
    cdef int64_t seg
    if local == NULL:
        _counts_in_stretches(job, start, stop)
        return
    if job.repeat == 1:
        TABLE.fused.run(TABLE.fused.relu_count_cols[job.slot], size, job.k.args[0] + e * size,
                        NULL, job.k.args[1] + e * size, local, e % job.period, stop - e,
                        job.period, job.stream, job.k.consts)
        for j in range(job.ncounts):
            if (<int32_t *>local)[j]:
                fr_atomic_add_i64(&job.counts[j], (<int32_t *>local)[j])
    else:
        while e < stop:
            j = (e // job.repeat) % job.period
            length = min(stop - e, job.repeat - e % job.repeat)
            TABLE.fused.run(TABLE.fused.relu_count[job.slot], size, job.k.args[0] + e * size,
                            NULL, job.k.args[1] + e * size, &(<int64_t *>local)[j], 0, length,
                            0, job.stream, job.k.consts)
            e += length
        for j in range(job.ncounts):
            seg = (<int64_t *>local)[j]
            if seg:
                fr_atomic_add_i64(&job.counts[j], seg)
    free(local)


cdef void _counts_in_stretches(tile_job_t *job, npy_intp start, npy_intp stop) noexcept nogil:
    """`_counts_cb` without heap memory: one segment (or one period of a
    row) at a time, at most 2**16 elements, counted on the stack."""
    cdef int32_t counts[1 << 16]
    cdef int64_t seg
    cdef npy_intp e = start, j, length, t, size = job.k.itemsize
    while e < stop:
        if job.repeat == 1:
            j = e % job.period
            length = min(stop - e, job.period - j, <npy_intp>(1 << 16))
            memset(counts, 0, length * sizeof(int32_t))
            TABLE.fused.relu_count_cols[job.slot](job.k.args[0] + e * size, NULL,
                                                  job.k.args[1] + e * size, counts, 0, length,
                                                  length, job.k.consts)
            for t in range(length):
                if counts[t]:
                    fr_atomic_add_i64(&job.counts[j + t], counts[t])
        else:
            j = (e // job.repeat) % job.period
            length = min(stop - e, job.repeat - e % job.repeat)
            seg = 0
            TABLE.fused.relu_count[job.slot](job.k.args[0] + e * size, NULL,
                                             job.k.args[1] + e * size, &seg, 0, length, 0,
                                             job.k.consts)
            fr_atomic_add_i64(&job.counts[j], seg)
        e += length


def relu_with_counts(cnp.ndarray x, cnp.ndarray y, cnp.ndarray counts, npy_intp period,
                     npy_intp repeat):
    """y = relu(x) and counts[j] += the elements > 0 of x that belong to j: with
    repeat 1, element i belongs to i % period (len(counts) == period); with
    repeat > 1, to (i // repeat) % period."""
    cdef tile_job_t job
    _start_job(&job, OP_RELU, x, None, y)
    job.counts = <int64_t *>cnp.PyArray_DATA(counts)
    job.ncounts = cnp.PyArray_SIZE(counts)
    job.period = period
    job.repeat = repeat
    with nogil:
        _run_tiles(_counts_cb, &job, job.n, job.k.itemsize, job.n * job.k.itemsize)


def bias_add_relu(cnp.ndarray x, cnp.ndarray bias, cnp.ndarray out, npy_intp period,
                  npy_intp repeat):
    """out = add_relu(x, b) where element i takes bias[(i // repeat) % period]."""
    cdef const row_t *d = row_for(cnp.PyArray_TYPE(x))
    cdef call_t k
    k.fn = d.fn[OP_ADD_RELU]
    k.op = op_info(OP_ADD_RELU)
    k.consts = &d.consts
    k.itemsize = d.itemsize
    k.period = period
    k.repeat = repeat
    k.args[0] = <char *>cnp.PyArray_DATA(x)
    k.args[1] = <char *>cnp.PyArray_DATA(bias)
    k.args[2] = <char *>cnp.PyArray_DATA(out)
    k.steps[0] = k.steps[1] = k.steps[2] = d.itemsize
    execute_gil(&k, cnp.PyArray_SIZE(x))


cdef void _bias_grad_cb(void *ctx, npy_intp start, npy_intp stop) noexcept nogil:
    # Task t: rows [b * rows_per_block, ...) of block b = t // col_slices, columns
    # [c0, c1) of slice t % col_slices. Row layout (repeat 1): rows of ``period``
    # elements, acc[b][c] += row[c], rows in order. Segment layout: row o holds
    # ``period`` segments of ``repeat`` elements; segment j adds into the 16
    # lanes acc[b][j][:], rows in order (the lanes' tree comes later).
    cdef tile_job_t *job = <tile_job_t *>ctx
    cdef npy_intp t, b, c0, c1, r, r1, e, length, j, size = job.k.itemsize
    cdef npy_intp rows = (job.n + job.period * job.repeat - 1) // (job.period * job.repeat)
    cdef char *g = job.k.args[0]
    cdef char *y = job.k.args[1]
    cdef char *gx = job.k.args[2]
    for t in range(start, stop):
        b = t // job.col_slices
        c0 = (t % job.col_slices) * job.col_width
        c1 = min(c0 + job.col_width, job.period)
        r1 = min((b + 1) * job.rows_per_block, rows)
        for r in range(b * job.rows_per_block, r1):
            if job.repeat == 1:
                e = r * job.period + c0
                length = min(c1 - c0, job.n - e)
                if length <= 0:
                    break
                TABLE.fused.run(TABLE.fused.backward_acc_cols[job.slot], size, g + e * size,
                                y + e * size, gx + e * size,
                                job.acc + (b * job.period + c0) * job.accsize, 0, length,
                                0, job.stream, job.k.consts)
            else:
                for j in range(c0, c1):
                    e = (r * job.period + j) * job.repeat
                    TABLE.fused.run(TABLE.fused.backward_acc_lanes[job.slot], size,
                                    g + e * size, y + e * size, gx + e * size,
                                    job.acc + ((b * job.period + j) * 16) * job.accsize, 0,
                                    job.repeat, 0, job.stream, job.k.consts)


def bias_relu_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray gx, cnp.ndarray acc,
                       npy_intp period, npy_intp repeat, npy_intp rows_per_block,
                       npy_intp col_width):
    """gx = relu_backward(g, y), and acc[b] (float32, float64 for float64 data;
    zeroed) the partial sums of gx of row block b (see _bias_grad_cb): shape
    (blocks, period) in the row layout, (blocks, period, 16) in the segment
    layout."""
    cdef tile_job_t job
    cdef npy_intp blocks = cnp.PyArray_DIMS(acc)[0]
    _start_job(&job, OP_RELU_BACKWARD, g, y, gx)
    job.acc = <char *>cnp.PyArray_DATA(acc)
    job.accsize = cnp.PyArray_ITEMSIZE(acc)
    job.period = period
    job.repeat = repeat
    job.rows_per_block = rows_per_block
    job.col_width = col_width
    job.col_slices = (period + col_width - 1) // col_width
    with nogil:
        _run_tasks(_bias_grad_cb, &job, blocks * job.col_slices,
                   job.n * job.k.itemsize * 3 // 2)


cdef void _run_tasks(fr_chunk_fn fn, void *ctx, npy_intp tasks,
                     npy_intp moved) noexcept nogil:
    """fn over tasks [0, tasks), one at a time, on the thread policy of
    `_execute_plain` (``moved`` bytes in all)."""
    cdef bint hot
    cdef long long now
    cdef int nt
    if moved < PARALLEL_MIN_BYTES or tasks < 2:
        fn(ctx, 0, tasks)
        return
    hot = fr_pool_hot(&now)
    nt = _team_size(moved, hot)
    if nt <= 1:
        fn(ctx, 0, tasks)
        fr_pool_note_end()
        return
    fr_pool_run(fn, ctx, tasks, 1, nt, now + fr_pool_spin_ns if hot else 0)
    fr_pool_note_end()
    fr_team_release()


ctypedef fused accumulator_t:
    float
    double


cdef void _add_rows(accumulator_t *a, npy_intp rows, npy_intp cols) noexcept nogil:
    cdef npy_intp r, c
    for r in range(1, rows):
        for c in range(cols):
            a[c] += a[r * cols + c]


def sum_rows_in_order(cnp.ndarray a):
    """Row 0 of the C-contiguous 2-D float32/float64 array ``a`` becomes
    ``a[0] + a[1] + ... + a[-1]``, added in that order (no pairwise or
    vectorized reassociation: the order the bias gradient's bound counts);
    returns that row. ``a`` is overwritten."""
    cdef npy_intp rows = cnp.PyArray_DIMS(a)[0], cols = cnp.PyArray_DIMS(a)[1]
    with nogil:
        if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32:
            _add_rows(<float *>cnp.PyArray_DATA(a), rows, cols)
        else:
            _add_rows(<double *>cnp.PyArray_DATA(a), rows, cols)
    return a[0]
