# The elementwise bodies of every operation, written once. Included by
# _loops_baseline.pyx, _loops_avx2.pyx and _loops_avx512.pyx, which setup.py
# compiles with the instruction-set flags of their level (FASTRELU_ISA /
# FASTRELU_ISA_CFLAGS). The loops around the bodies and the table the module
# exports are generated from the registry (_loops_table.pxi.tp): a body is
# ``<op>_body(x, k)`` (unary) or ``<op>_body(g, x, k)`` (binary) and returns the
# output element.
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
# A comparison with any other bound (threshold) orders floats by a key: the
# bits with every bit but the sign flipped when the sign is set
# (``order_key``), which orders all non-NaN floats as integers; NaNs are told
# apart by their magnitude bits (above those of inf).
#
# The constants reach the bodies as ``k`` (consts_t.bits in the element's
# width, _loops.pxd): NEG, POS, ONE, SIX, FLIP per dtype, then the call's
# bound/value parameters P0, P1. ``_engine`` owns them.
#
# The "real" family (leaky ReLU) is the exception: it scales negative values,
# so it needs float arithmetic and works on float16/float32/float64 only
# (float16 computed in float32, as PyTorch does). Its bodies take the whole
# consts_t (the slope); _engine keeps the caller's IEEE flags around them.
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t,
                          uint8_t, uint16_t, uint32_t, uint64_t)
from libc.string cimport memcpy
from cpython.pycapsule cimport PyCapsule_New
from numpy cimport npy_intp

from fastrelu._loops cimport *
from fastrelu._ops cimport *

cdef extern from *:
    const char *FASTRELU_ISA
    const char *FASTRELU_ISA_CFLAGS

cdef extern from "_half.h":
    int fr_half_to_float(const char *src, npy_intp step, float *dst, npy_intp n) noexcept nogil
    void fr_float_to_half(const float *src, char *dst, npy_intp step, npy_intp n,
                          int exact) noexcept nogil

cdef extern from "_mlfloat.h":
    # the same for the ml_dtypes floats (their "real" loops)
    int fr_bf16_to_float(const char *src, npy_intp step, float *dst, npy_intp n) noexcept nogil
    void fr_float_to_bf16(const float *src, char *dst, npy_intp step, npy_intp n,
                          int exact) noexcept nogil
    int fr_e4m3_to_float(const char *src, npy_intp step, float *dst, npy_intp n) noexcept nogil
    void fr_float_to_e4m3(const float *src, char *dst, npy_intp step, npy_intp n,
                          int exact) noexcept nogil
    int fr_e5m2_to_float(const char *src, npy_intp step, float *dst, npy_intp n) noexcept nogil
    void fr_float_to_e5m2(const float *src, char *dst, npy_intp step, npy_intp n,
                          int exact) noexcept nogil

cdef enum:
    HALF_BLOCK = 1024      # narrow float elements converted per block (4 KiB of float32 each)

cdef extern from "_fused.h":
    void fr_fused_fill(fr_fused_table_t *t) noexcept nogil

cdef extern from "_stream.h":
    void fr_stream_run(fr_kernel_fn fn, int nin, char **args, const npy_intp *steps,
                       npy_intp n, const fr_consts_t *c) noexcept nogil

ctypedef fused bits_t:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t

ctypedef fused real_t:
    float
    double


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


cdef inline bits_t order_key(bits_t v, const bits_t *k) noexcept nogil:
    """Bits that order as the values do: a float's bits with the magnitude
    flipped when the sign is set (-0.0 sorts just below +0.0, so _engine
    stores a bound of -0.0 as +0.0); the integer itself for integers (FLIP 0)."""
    return v ^ ((v >> (8 * sizeof(bits_t) - 1)) & k[K_FLIP])


cdef inline bint is_nan(bits_t v, const bits_t *k) noexcept nogil:
    """A NaN: magnitude bits above those of inf (never true for integers)."""
    return (v & k[K_FLIP]) > k[K_POS]


# --- relu: 0 if x <= 0 else x -----------------------------------------------------

cdef inline bits_t relu_body(bits_t x, const bits_t *k) noexcept nogil:
    return keep(x, x > k[K_NEG])


# --- gradient: ONE where x > 0, else 0 --------------------------------------------

cdef inline bits_t relu_grad_body(bits_t x, const bits_t *k) noexcept nogil:
    return keep(k[K_ONE], (x > 0) & (x <= k[K_POS]))


# --- fused backward: g where x > 0, else 0 (a selection, never g * mask) ----------

cdef inline bits_t relu_backward_body(bits_t g, bits_t x, const bits_t *k) noexcept nogil:
    return keep(g, (x > 0) & (x <= k[K_POS]))


# --- relu6: clamp to [0, 6], NaN kept ----------------------------------------------

cdef inline bits_t relu6_body(bits_t x, const bits_t *k) noexcept nogil:
    # x >= 6 is ``SIX <= bits <= POS``: positive NaNs lie above POS (= +inf).
    return pick(keep(x, x > k[K_NEG]), k[K_SIX], (x >= k[K_SIX]) & (x <= k[K_POS]))


cdef inline bits_t relu6_backward_body(bits_t g, bits_t x, const bits_t *k) noexcept nogil:
    # g where 0 < x < 6 (NaN excluded: negative NaNs are < 0, positive ones > SIX)
    return keep(g, (x > 0) & (x < k[K_SIX]))


# --- threshold: x if x > threshold (or NaN) else value ------------------------------
# P0 is the bound's order_key (a NaN bound is the largest key: nothing is above
# it); P1 the value's bits.

cdef inline bits_t threshold_body(bits_t x, const bits_t *k) noexcept nogil:
    return pick(k[K_P1], x, (order_key(x, k) > k[K_P0]) | is_nan(x, k))


cdef inline bits_t threshold_backward_body(bits_t g, bits_t x, const bits_t *k) noexcept nogil:
    return keep(g, (order_key(x, k) > k[K_P0]) & (not is_nan(x, k)))


# --- leaky relu: x if x > 0 else x * slope (floats only) ----------------------------
# The product is computed for every element and then selected: a multiply
# under a condition is control flow that GCC does not vectorize (it could trap).

cdef inline real_t leaky_relu_body(real_t x, const consts_t *c) noexcept nogil:
    cdef float pf
    cdef double pd
    if real_t is double:
        pd = x * c.slope_d
        return x if x > 0 else pd
    else:
        pf = <float>x * c.slope_f
        return <real_t>(<float>x if x > 0 else pf)


# The product is of g quieted (the same value; a NaN's quiet bit set, as the
# multiply sets it anyway): clang folds ``g if x > 0 else g * slope`` into
# ``g * (1 if x > 0 else slope)``, which quiets a signaling NaN g that the
# selection must keep bit for bit; with a different operand there is no fold.

cdef extern from *:
    """
    static inline float fr_quieted_f(float v)
    {
        uint32_t u;
        memcpy(&u, &v, 4);
        u |= (uint32_t)((u & 0x7fffffffu) > 0x7f800000u) << 22;
        memcpy(&v, &u, 4);
        return v;
    }
    static inline double fr_quieted_d(double v)
    {
        uint64_t u;
        memcpy(&u, &v, 8);
        u |= (uint64_t)((u & 0x7fffffffffffffffull) > 0x7ff0000000000000ull) << 51;
        memcpy(&v, &u, 8);
        return v;
    }
    """
    float fr_quieted_f(float v) noexcept nogil
    double fr_quieted_d(double v) noexcept nogil


cdef inline real_t leaky_relu_backward_body(real_t g, real_t x, const consts_t *c) noexcept nogil:
    cdef float pf
    cdef double pd
    if real_t is double:
        pd = fr_quieted_d(g) * c.slope_d
        return g if x > 0 else pd
    else:
        pf = fr_quieted_f(<float>g) * c.slope_f
        return <real_t>(<float>g if x > 0 else pf)


# --- add_relu: relu(x + residual) (floats only) -----------------------------------
# The IEEE sum in the dtype's precision (float16 in float32, rounded once by the
# float16 wrapper), then ReLU as ``relu`` does it: NaN kept, -0.0 -> +0.0. Also
# the loop of bias_relu (the bias broadcast, stride 0 or one period per row).

# IEEE 754 leaves open which NaN a sum of two NaNs gives, and GCC may swap the
# operands of the (commutative) add: so a NaN x is taken first (quieted by
# ``x + 0``), which makes the result's bits the same on every level.

cdef inline real_t add_relu_body(real_t x, real_t r, const consts_t *c) noexcept nogil:
    cdef double sd
    cdef float sf
    if real_t is double:
        sd = x + r
        sd = x + 0.0 if x != x else sd
        return sd if (sd > 0) | (sd != sd) else 0.0
    else:
        sf = <float>x + <float>r
        sf = <float>x + 0.0 if x != x else sf
        return <real_t>(sf if (sf > 0) | (sf != sf) else 0.0)


include "_loops_table.pxi"
fr_fused_fill(&TABLE.fused)


def loop_table():
    """The loop table of this instruction-set level, as a PyCapsule."""
    return PyCapsule_New(&TABLE, b"fastrelu.loop_table", NULL)
