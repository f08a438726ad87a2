# The engine's C-level interface, for the modules that cimport it: the public
# functions (_functions), the ufunc loops (_ufuncs) and the Cython API (kernels).

from numpy cimport npy_intp

from fastrelu._loops cimport consts_t, kernel_fn
from fastrelu._ops cimport N_OPS, MAX_NIN

# One row of the dtype table, per NumPy type number.
ctypedef struct row_t:
    kernel_fn fn[N_OPS]      # NULL: the operation does not take this dtype
    consts_t consts          # the dtype's constants; parameters are set per call
    npy_intp itemsize
    int typenum
    char kind                # 'f', 'i', 'u'
    long long int_min        # integers: the range (parameter casts)
    long long int_max        # (uint64: capped at the int64 maximum)

# What the executor needs to know of an operation (from the registry).
ctypedef struct op_info_t:
    int nin                  # array inputs
    int nparams
    int param_kind[4]        # PARAM_SLOPE, PARAM_BOUND, PARAM_VALUE
    bint streams             # may write its output with non-temporal stores
    bint real                # float arithmetic: keep the caller's IEEE flags

cdef enum:
    PARAM_SLOPE, PARAM_BOUND, PARAM_VALUE
    MAX_ARGS = MAX_NIN + 1

# One call: the operation's loop, its operands and constants.
ctypedef struct call_t:
    kernel_fn fn
    const consts_t *consts
    const op_info_t *op
    char *args[MAX_ARGS]     # the inputs, then the output
    npy_intp steps[MAX_ARGS] # byte strides
    npy_intp itemsize
    npy_intp pad             # threaded runs: elements before the first chunk boundary
    npy_intp period          # 0, or: the second input repeats (bias_relu) with this many
    npy_intp repeat          # distinct elements, each ``repeat`` times in a row (_run_chunk)

cdef const row_t *row_for(int typenum) noexcept nogil
cdef const op_info_t *op_info(int op) noexcept nogil
cdef void set_param(consts_t *c, const row_t *d, int kind, int index,
                    const char *value) noexcept nogil
cdef void execute(call_t *k, npy_intp n) noexcept nogil
cdef void execute_gil(call_t *k, npy_intp n) noexcept
cdef npy_intp nogil_min_bytes() noexcept nogil
