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

ctypedef struct kernel_table_t:
    const char *isa              # "baseline", "avx2", "avx512"
    const char *cflags           # the instruction-set flags the module was built with
    unary_fn relu[N_CARRIERS]
    unary_fn relu_stream[N_CARRIERS]   # non-temporal stores; contiguous, non-aliased only
    unary_fn grad[N_CARRIERS]
    binary_fn backward[N_CARRIERS]
