# The C-level contract between the kernel modules and the dispatcher.
#
# ``_kernels.pxi`` holds the typed loops. It is compiled once per instruction
# set (``_kernels_baseline``, ``_kernels_avx2``, ``_kernels_avx512``); each of
# those modules fills one ``kernel_table_t`` and hands it to ``_core`` through a
# PyCapsule, which picks one table at import time.
#
# Every kernel works on the *bits* of the element: floats are read as the
# signed integer of the same width (see ``_kernels.pxi`` for why), so one loop
# per integer width serves every dtype. Strides are in bytes.

from numpy cimport npy_intp

# out[i] = f(x[i]); ``c`` points to the three per-dtype constants (see _kernels.pxi)
ctypedef void (*unary_fn)(const char *x, npy_intp sx, char *out, npy_intp so,
                          npy_intp n, const void *c) noexcept nogil

# out[i] = g[i] if x[i] > 0 else 0
ctypedef void (*binary_fn)(const char *g, npy_intp sg, const char *x, npy_intp sx,
                           char *out, npy_intp so, npy_intp n,
                           const void *c) noexcept nogil

# Integer "carrier" types, indexed by this order in every table below.
cdef enum carrier:
    C_INT8, C_INT16, C_INT32, C_INT64, C_UINT8, C_UINT16, C_UINT32, C_UINT64, N_CARRIERS

# Float kinds of the leaky kernels, indexed by this order.
cdef enum real_kind:
    R_HALF, R_FLOAT, R_DOUBLE, N_REALS

# The leaky kernels' ``c``: the slope in float (float16/float32 kernels) and
# double (float64 kernels).
ctypedef struct slope_t:
    float f
    double d

# The operations, as indices into _core's dtype table.
cdef enum:   # unary: out = f(x)
    OP_RELU, OP_RELU_GRAD, OP_RELU6, OP_LEAKY, N_UNARY
cdef enum:   # binary: out = f(grad_output, x)
    OP_RELU_BACKWARD, OP_RELU6_BACKWARD, OP_LEAKY_BACKWARD, N_BINARY

# _core's dispatcher for C callers (fastrelu.kernels): contiguous operands of
# NumPy type number ``typenum``; ``consts`` NULL, or the slope_t of a leaky op.
ctypedef void (*run_unary_fn)(int op, int typenum, const char *x, char *out, npy_intp n,
                              const void *consts) noexcept nogil
ctypedef void (*run_binary_fn)(int op, int typenum, const char *g, const char *x,
                               char *out, npy_intp n, const void *consts) noexcept nogil
ctypedef struct c_api_t:
    run_unary_fn run_unary
    run_binary_fn run_binary

ctypedef struct kernel_table_t:
    const char *isa              # "baseline", "avx2", "avx512"
    const char *cflags           # the instruction-set flags the module was built with
    unary_fn relu[N_CARRIERS]
    unary_fn relu_stream[N_CARRIERS]   # non-temporal stores; contiguous, non-aliased only
    unary_fn grad[N_CARRIERS]
    binary_fn backward[N_CARRIERS]
    unary_fn relu6[N_CARRIERS]
    binary_fn relu6_backward[N_CARRIERS]
    unary_fn leaky[N_REALS]
    binary_fn leaky_backward[N_REALS]
