# The C-level contract between the loop modules and the engine.
#
# ``_loops.pxi`` holds the elementwise bodies; the generated
# ``_loops_table.pxi`` wraps each body in its loops, one per (operation, element
# type), and fills a ``loop_table_t``. The .pxi is compiled once per
# instruction-set level (``_loops_baseline``, ``_loops_avx2``, ``_loops_avx512``);
# ``_engine`` loads one table at import and owns the dtype table built from it.

from libc.stdint cimport int32_t, int64_t, uint8_t
from numpy cimport npy_intp

from fastrelu._ops cimport N_OPS


# Per-call constants. ``bits`` holds up to eight values in the width of the
# element type (read as ``(<const T *>c.bits)[k]``): the dtype's own constants,
# then the call's bound/value parameters. The slope of the "real" operations is
# kept both as float (float16/float32 loops) and double (float64 loops).
cdef enum:
    K_NEG = 0      # floats: bits(-inf); integers: 0 (every bits <= NEG is <= 0)
    K_POS = 1      # floats: bits(+inf); integers: the maximum (NaNs lie above)
    K_ONE = 2      # 1 in the dtype
    K_SIX = 3      # 6 in the dtype
    K_FLIP = 4     # floats: all bits but the sign; integers: 0 (see ``order_key``)
    K_P0 = 5       # the call's first bound/value parameter, in the dtype
    K_P1 = 6       # the second
    N_CONSTS = 8

cdef extern from "_loops.h":
    ctypedef struct fr_consts_t:
        npy_intp bits_storage[8]      # N_CONSTS values of up to 8 bytes, packed
        float slope_f
        double slope_d
    # One loop: ufunc-style ``args`` (the inputs, then the output) and byte
    # ``steps``; n elements.
    ctypedef void (*fr_kernel_fn)(char **args, const npy_intp *steps, npy_intp n,
                                  const fr_consts_t *c) noexcept nogil
    # The same, with the output written by non-temporal stores (contiguous,
    # aligned output apart from the inputs; _stream.h).
    ctypedef void (*fr_stream_run_fn)(fr_kernel_fn fn, int nin, char **args,
                                      const npy_intp *steps, npy_intp n,
                                      const fr_consts_t *c) noexcept nogil

ctypedef fr_consts_t consts_t
ctypedef fr_kernel_fn kernel_fn

# The element types of the table's columns.
cdef enum:
    S_INT8, S_INT16, S_INT32, S_INT64, S_UINT8, S_UINT16, S_UINT32, S_UINT64,
    S_FLOAT16, S_FLOAT32, S_FLOAT64,
    S_BFLOAT16, S_FLOAT8_E4M3FN, S_FLOAT8_E5M2,    # ml_dtypes (_registry.ML_DTYPE_NAMES)
    N_SLOTS

cdef extern from "_fused.h":
    # The kernels of the fused operations, per table column (_fused.h).
    ctypedef void (*fr_pack_fn)(const char *x, uint8_t *mask, npy_intp n,
                                const fr_consts_t *c) noexcept nogil
    ctypedef void (*fr_unmask_fn)(const char *g, const uint8_t *mask, char *out,
                                  npy_intp n) noexcept nogil
    ctypedef int64_t (*fr_count_fn)(const char *x, npy_intp n,
                                    const fr_consts_t *c) noexcept nogil
    ctypedef void (*fr_fused_fn)(const char *a, const char *b, char *out, void *aux,
                                 npy_intp k0, npy_intp n, npy_intp period,
                                 const fr_consts_t *c) noexcept nogil
    ctypedef struct fr_fused_table_t:
        fr_pack_fn pack[11]
        fr_unmask_fn unmask[11]
        fr_count_fn count[11]
        fr_fused_fn relu_pack[11]
        fr_fused_fn relu_count_cols[11]
        fr_fused_fn relu_count[11]
        fr_fused_fn backward_acc_cols[11]
        fr_fused_fn backward_acc_lanes[11]
        void (*unmask_run)(fr_unmask_fn fn, npy_intp size, const char *g, const uint8_t *mask,
                           char *out, npy_intp n, int stream) noexcept nogil
        void (*run)(fr_fused_fn fn, npy_intp size, const char *a, const char *b, char *out,
                    void *aux, npy_intp k0, npy_intp n, npy_intp period, int stream,
                    const fr_consts_t *c) noexcept nogil

ctypedef struct loop_table_t:
    const char *isa              # "baseline", "avx2", "avx512"
    const char *cflags           # the instruction-set flags the module was built with
    kernel_fn fn[N_OPS][N_SLOTS] # NULL: the operation does not take that element type
    fr_stream_run_fn stream_run
    fr_fused_table_t fused
