# The typed loops, written once. Included by _kernels_baseline.pyx,
# _kernels_avx2.pyx and _kernels_avx512.pyx, which setup.py compiles with the
# instruction-set flags of their level (FASTRELU_ISA / FASTRELU_ISA_CFLAGS).
#
# Why the loops work on integer bits, also for floats
# ---------------------------------------------------
# A float's IEEE-754 bits, read as a signed integer of the same width, order the
# values so that one integer comparison decides ReLU:
#
#   * every negative non-NaN float (-0.0 .. -inf) lies at or below the bits of
#     -inf (0xff800000 for float32), because the sign bit makes it negative;
#   * negative-signed NaNs lie above that (their mantissa is non-zero);
#   * +0.0, positive numbers, +inf and positive NaNs are >= 0.
#
# So ``relu = 0 if bits <= NEG else bits`` with NEG = bits(-inf) for floats and
# NEG = 0 for integers, and ``x > 0`` is ``0 < bits <= POS`` with
# POS = bits(+inf) (or the integer maximum). This gives, for every dtype:
#   - NaN kept with its payload, -0.0 -> +0.0, -inf -> 0, subnormals kept (also
#     when another library has set the FPU's denormals-are-zero flag);
#   - no floating-point instruction at all: no FP exception flags (so NumPy
#     never warns), no dependence on the FP environment;
#   - float16 at full SIMD speed without F16C;
#   - compare + select that GCC vectorizes at -O3 for every width.
#
# The per-dtype constants reach the kernels as ``c = {NEG, POS, ONE, SIX}``
# (ONE and SIX are the bits of 1 and 6 in that dtype, for the gradient and
# relu6); ``_core`` owns them.
#
# Leaky ReLU is the exception: it scales negative values, so it needs float
# arithmetic and works on float16/float32/float64 only (float16 computed in
# float32, as PyTorch does). Its ``c`` points to a ``slope_t``.
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t,
                          uint8_t, uint16_t, uint32_t, uint64_t)
from cpython.pycapsule cimport PyCapsule_New
from numpy cimport npy_intp

from fastrelu._kernels cimport (
    unary_fn, binary_fn, kernel_table_t, slope_t,
    C_INT8, C_INT16, C_INT32, C_INT64, C_UINT8, C_UINT16, C_UINT32, C_UINT64,
)

cdef extern from *:
    const char *FASTRELU_ISA
    const char *FASTRELU_ISA_CFLAGS

cdef extern from "_stream.h":
    # out-of-place relu with non-temporal stores (contiguous, non-overlapping)
    void fr_relu_stream_int8_t(const int8_t *, npy_intp, int8_t *, npy_intp, npy_intp, const int8_t *) noexcept nogil
    void fr_relu_stream_int16_t(const int16_t *, npy_intp, int16_t *, npy_intp, npy_intp, const int16_t *) noexcept nogil
    void fr_relu_stream_int32_t(const int32_t *, npy_intp, int32_t *, npy_intp, npy_intp, const int32_t *) noexcept nogil
    void fr_relu_stream_int64_t(const int64_t *, npy_intp, int64_t *, npy_intp, npy_intp, const int64_t *) noexcept nogil
    void fr_relu_stream_uint8_t(const uint8_t *, npy_intp, uint8_t *, npy_intp, npy_intp, const uint8_t *) noexcept nogil
    void fr_relu_stream_uint16_t(const uint16_t *, npy_intp, uint16_t *, npy_intp, npy_intp, const uint16_t *) noexcept nogil
    void fr_relu_stream_uint32_t(const uint32_t *, npy_intp, uint32_t *, npy_intp, npy_intp, const uint32_t *) noexcept nogil
    void fr_relu_stream_uint64_t(const uint64_t *, npy_intp, uint64_t *, npy_intp, npy_intp, const uint64_t *) noexcept nogil

ctypedef fused bits_t:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t

cdef enum:
    NEG = 0
    POS = 1
    ONE = 2
    SIX = 3

cdef extern from *:
    # GCC's IEEE binary16 (arithmetic is done in float). Declared to Cython as
    # an integer type only so that its fused specialization stays distinct
    # from ``float``; every expression below converts it to float explicitly.
    ctypedef short half "_Float16"

ctypedef fused real_t:
    half
    float
    double


cdef inline const bits_t *at(const bits_t *p, npy_intp stride, npy_intp i) noexcept nogil:
    return <const bits_t *>(<const char *>p + i * stride)


cdef inline bits_t *at_mut(bits_t *p, npy_intp stride, npy_intp i) noexcept nogil:
    return <bits_t *>(<char *>p + i * stride)


# Selections are written as masks: one bitwise AND, no branch, so that a loop
# GCC does not vectorize (64-bit compares do not exist in SSE2) still runs at
# a steady rate on random signs instead of mispredicting every other element.

cdef inline bits_t keep(bits_t v, bint cond) noexcept nogil:
    """v where cond, else 0."""
    return v & <bits_t>(-(<bits_t>cond))


cdef inline bits_t pick(bits_t a, bits_t b, bint cond) noexcept nogil:
    """b where cond, else a."""
    cdef bits_t m = <bits_t>(-(<bits_t>cond))
    return (a & ~m) | (b & m)


# --- relu ---------------------------------------------------------------------

cdef void relu_kernel(const bits_t *x, npy_intp sx, bits_t *out, npy_intp so,
                      npy_intp n, const bits_t *c) noexcept nogil:
    cdef bits_t neg = c[NEG], v
    cdef npy_intp i
    if sx == sizeof(bits_t) and so == sizeof(bits_t):
        for i in range(n):
            out[i] = keep(x[i], x[i] > neg)
    elif so == sizeof(bits_t):
        # strided view into a fresh (contiguous) output: the common x[::k] case
        for i in range(n):
            v = at(x, sx, i)[0]
            out[i] = keep(v, v > neg)
    else:
        for i in range(n):
            v = at(x, sx, i)[0]
            at_mut(out, so, i)[0] = keep(v, v > neg)


# --- gradient: ONE where x > 0, else 0 -------------------------------------

cdef void grad_kernel(const bits_t *x, npy_intp sx, bits_t *out, npy_intp so,
                      npy_intp n, const bits_t *c) noexcept nogil:
    cdef bits_t pos = c[POS], one = c[ONE], v
    cdef npy_intp i
    if sx == sizeof(bits_t) and so == sizeof(bits_t):
        for i in range(n):
            out[i] = keep(one, (x[i] > 0) & (x[i] <= pos))
    else:
        for i in range(n):
            v = at(x, sx, i)[0]
            at_mut(out, so, i)[0] = keep(one, (v > 0) & (v <= pos))


# --- fused backward: g where x > 0, else 0 (a selection, never g * mask) -------

cdef void backward_kernel(const bits_t *g, npy_intp sg, const bits_t *x, npy_intp sx,
                          bits_t *out, npy_intp so, npy_intp n,
                          const bits_t *c) noexcept nogil:
    # Both operands are loaded unconditionally: a load inside the selection
    # would be control flow, which GCC does not vectorize for 8/16-bit types.
    cdef bits_t pos = c[POS], v, w
    cdef npy_intp i
    if sg == sizeof(bits_t) and sx == sizeof(bits_t) and so == sizeof(bits_t):
        for i in range(n):
            v = x[i]
            w = g[i]
            out[i] = keep(w, (v > 0) & (v <= pos))
    else:
        for i in range(n):
            v = at(x, sx, i)[0]
            w = at(g, sg, i)[0]
            at_mut(out, so, i)[0] = keep(w, (v > 0) & (v <= pos))


# --- relu6: clamp to [0, 6], NaN kept -------------------------------------------

cdef void relu6_kernel(const bits_t *x, npy_intp sx, bits_t *out, npy_intp so,
                       npy_intp n, const bits_t *c) noexcept nogil:
    # x >= 6 is ``SIX <= bits <= POS``: positive NaNs lie above POS (= +inf).
    cdef bits_t neg = c[NEG], pos = c[POS], six = c[SIX], v
    cdef npy_intp i
    if sx == sizeof(bits_t) and so == sizeof(bits_t):
        for i in range(n):
            v = x[i]
            out[i] = pick(keep(v, v > neg), six, (v >= six) & (v <= pos))
    else:
        for i in range(n):
            v = at(x, sx, i)[0]
            at_mut(out, so, i)[0] = pick(keep(v, v > neg), six, (v >= six) & (v <= pos))


cdef void relu6_backward_kernel(const bits_t *g, npy_intp sg, const bits_t *x, npy_intp sx,
                                bits_t *out, npy_intp so, npy_intp n,
                                const bits_t *c) noexcept nogil:
    # g where 0 < x < 6 (NaN excluded: negative NaNs are < 0, positive ones > SIX)
    cdef bits_t six = c[SIX], v, w
    cdef npy_intp i
    if sg == sizeof(bits_t) and sx == sizeof(bits_t) and so == sizeof(bits_t):
        for i in range(n):
            v = x[i]
            w = g[i]
            out[i] = keep(w, (v > 0) & (v < six))
    else:
        for i in range(n):
            v = at(x, sx, i)[0]
            w = at(g, sg, i)[0]
            at_mut(out, so, i)[0] = keep(w, (v > 0) & (v < six))


# --- leaky relu: x if x > 0 else x * slope (floats only) ------------------------
# The product is computed for every element and then selected: a multiply
# under a condition is control flow that GCC does not vectorize (it could trap).
# Its IEEE flags are cleared by the ufunc loops in _core.

cdef void leaky_kernel(const real_t *x, npy_intp sx, real_t *out, npy_intp so,
                       npy_intp n, const slope_t *c) noexcept nogil:
    cdef npy_intp i
    cdef float sf = c.f, pf
    cdef double sd = c.d, pd
    cdef real_t v
    if sx == sizeof(real_t) and so == sizeof(real_t):
        for i in range(n):
            v = x[i]
            if real_t is double:
                pd = v * sd
                out[i] = v if v > 0 else pd
            else:
                pf = <float>v * sf
                out[i] = <real_t>(<float>v if v > 0 else pf)
    else:
        for i in range(n):
            v = (<const real_t *>(<const char *>x + i * sx))[0]
            if real_t is double:
                pd = v * sd
                (<real_t *>(<char *>out + i * so))[0] = v if v > 0 else pd
            else:
                pf = <float>v * sf
                (<real_t *>(<char *>out + i * so))[0] = <real_t>(<float>v if v > 0 else pf)


cdef void leaky_backward_kernel(const real_t *g, npy_intp sg, const real_t *x, npy_intp sx,
                                real_t *out, npy_intp so, npy_intp n,
                                const slope_t *c) noexcept nogil:
    cdef npy_intp i
    cdef float sf = c.f, pf
    cdef double sd = c.d, pd
    cdef real_t v, w
    if sg == sizeof(real_t) and sx == sizeof(real_t) and so == sizeof(real_t):
        for i in range(n):
            v = x[i]
            w = g[i]
            if real_t is double:
                pd = w * sd
                out[i] = w if v > 0 else pd
            else:
                pf = <float>w * sf
                out[i] = <real_t>(<float>w if v > 0 else pf)
    else:
        for i in range(n):
            v = (<const real_t *>(<const char *>x + i * sx))[0]
            w = (<const real_t *>(<const char *>g + i * sg))[0]
            if real_t is double:
                pd = w * sd
                (<real_t *>(<char *>out + i * so))[0] = w if v > 0 else pd
            else:
                pf = <float>w * sf
                (<real_t *>(<char *>out + i * so))[0] = <real_t>(<float>w if v > 0 else pf)


# --- the table this module exports ---------------------------------------------
# The casts drop the element type from the pointers: the table is indexed by
# carrier, and _core passes each entry pointers of exactly that type.

cdef kernel_table_t TABLE
TABLE.isa = FASTRELU_ISA
TABLE.cflags = FASTRELU_ISA_CFLAGS

TABLE.relu[:] = [
    <unary_fn>relu_kernel[int8_t], <unary_fn>relu_kernel[int16_t],
    <unary_fn>relu_kernel[int32_t], <unary_fn>relu_kernel[int64_t],
    <unary_fn>relu_kernel[uint8_t], <unary_fn>relu_kernel[uint16_t],
    <unary_fn>relu_kernel[uint32_t], <unary_fn>relu_kernel[uint64_t],
]
TABLE.relu_stream[:] = [
    <unary_fn>fr_relu_stream_int8_t, <unary_fn>fr_relu_stream_int16_t,
    <unary_fn>fr_relu_stream_int32_t, <unary_fn>fr_relu_stream_int64_t,
    <unary_fn>fr_relu_stream_uint8_t, <unary_fn>fr_relu_stream_uint16_t,
    <unary_fn>fr_relu_stream_uint32_t, <unary_fn>fr_relu_stream_uint64_t,
]
TABLE.grad[:] = [
    <unary_fn>grad_kernel[int8_t], <unary_fn>grad_kernel[int16_t],
    <unary_fn>grad_kernel[int32_t], <unary_fn>grad_kernel[int64_t],
    <unary_fn>grad_kernel[uint8_t], <unary_fn>grad_kernel[uint16_t],
    <unary_fn>grad_kernel[uint32_t], <unary_fn>grad_kernel[uint64_t],
]
TABLE.relu6[:] = [
    <unary_fn>relu6_kernel[int8_t], <unary_fn>relu6_kernel[int16_t],
    <unary_fn>relu6_kernel[int32_t], <unary_fn>relu6_kernel[int64_t],
    <unary_fn>relu6_kernel[uint8_t], <unary_fn>relu6_kernel[uint16_t],
    <unary_fn>relu6_kernel[uint32_t], <unary_fn>relu6_kernel[uint64_t],
]
TABLE.relu6_backward[:] = [
    <binary_fn>relu6_backward_kernel[int8_t], <binary_fn>relu6_backward_kernel[int16_t],
    <binary_fn>relu6_backward_kernel[int32_t], <binary_fn>relu6_backward_kernel[int64_t],
    <binary_fn>relu6_backward_kernel[uint8_t], <binary_fn>relu6_backward_kernel[uint16_t],
    <binary_fn>relu6_backward_kernel[uint32_t], <binary_fn>relu6_backward_kernel[uint64_t],
]
TABLE.leaky[:] = [<unary_fn>leaky_kernel[half], <unary_fn>leaky_kernel[float],
                  <unary_fn>leaky_kernel[double]]
TABLE.leaky_backward[:] = [<binary_fn>leaky_backward_kernel[half],
                           <binary_fn>leaky_backward_kernel[float],
                           <binary_fn>leaky_backward_kernel[double]]
TABLE.backward[:] = [
    <binary_fn>backward_kernel[int8_t], <binary_fn>backward_kernel[int16_t],
    <binary_fn>backward_kernel[int32_t], <binary_fn>backward_kernel[int64_t],
    <binary_fn>backward_kernel[uint8_t], <binary_fn>backward_kernel[uint16_t],
    <binary_fn>backward_kernel[uint32_t], <binary_fn>backward_kernel[uint64_t],
]


def kernel_table():
    """The kernel table of this instruction-set level, as a PyCapsule."""
    return PyCapsule_New(&TABLE, b"fastrelu.kernel_table", NULL)
