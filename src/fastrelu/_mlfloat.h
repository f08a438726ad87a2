/* bfloat16, float8_e4m3fn and float8_e5m2 (the ml_dtypes formats) <-> float32,
 * for the "real" loops of those dtypes (_loops_table.pxi): leaky_relu and its
 * backward compute in float32 and round once, as for float16 (_half.h).
 *
 * The "bits" operations (relu, relu6, threshold, their backwards) never come
 * here: they run in the integer loops of the dtype's width on its bits.
 *
 * Both directions keep a NaN's bits where the format can hold them (its
 * payload is the top of float32's mantissa), so an element the loop selects
 * comes back bit for bit and one it computes comes back quieted with its
 * payload; ml_dtypes' own astype gives a canonical NaN instead. float8_e4m3fn
 * has one NaN per sign (S.1111.111) and no infinity. Rounding is to the
 * nearest in the caller's rounding mode (ties to even by default, as
 * ml_dtypes rounds): x + C - C in double, with C = the format's spacing at
 * x's magnitude times 2**52, rounds x to that spacing and subtracting C is
 * exact. A value beyond the largest finite one overflows to infinity
 * (float8_e4m3fn: to NaN, as ml_dtypes does), or to the largest finite value
 * when the mode rounds toward zero there.
 */
#ifndef FASTRELU_MLFLOAT_H
#define FASTRELU_MLFLOAT_H

#include <fenv.h>
#include <stdint.h>
#include <string.h>
#include <numpy/npy_common.h>

/* A float8 format: mantissa bits, exponent bias, and whether it is the
   "fn" kind (no infinity, one NaN per sign). */
typedef struct { int mant, bias, fn; } fr_f8_format_t;
static const fr_f8_format_t FR_E4M3FN = {3, 7, 1};
static const fr_f8_format_t FR_E5M2 = {2, 15, 0};

/* x rounded to a format with ``mant`` mantissa bits whose smallest normal
   exponent is ``emin``, in the caller's rounding mode (x finite). */
static inline double fr_round_to_format(float x, int mant, int emin)
{
    uint32_t u;
    uint64_t c_bits;
    double c;
    int e;
    memcpy(&u, &x, 4);
    e = (int)((u >> 23) & 0xff) - 127;
    if (e < emin)
        e = emin;                                   /* subnormals: one spacing */
    c_bits = ((uint64_t)(u >> 31) << 63) | ((uint64_t)(e - mant + 52 + 1023) << 52);
    memcpy(&c, &c_bits, 8);
    return ((double)x + c) - c;
}

/* Whether an overflow of this sign rounds to the largest finite value (the
   mode rounds toward zero there) rather than to infinity. */
static inline int fr_overflow_saturates(int negative)
{
    int mode = fegetround();
    return mode == FE_TOWARDZERO || mode == (negative ? FE_UPWARD : FE_DOWNWARD);
}

/* --- bfloat16: float32's upper half ------------------------------------------------ */

static inline float fr_bf16_bits_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t fr_float_to_bf16_bits(float x)
{
    uint32_t u, a;
    float r;
    memcpy(&u, &x, 4);
    a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                      /* NaN: its top bits, still a NaN */
        return (uint16_t)((u >> 16) | ((a >> 16) == 0x7f80u ? 0x40u : 0u));
    if (a == 0x7f800000u)
        return (uint16_t)(u >> 16);
    r = (float)fr_round_to_format(x, 7, -126);   /* exact, or +-inf past the range */
    a = u & 0x80000000u;                          /* x's sign: a zero r may have lost it */
    memcpy(&u, &r, 4);
    u = (u & 0x7fffffffu) | a;
    if ((u & 0x7fffffffu) == 0x7f800000u && fr_overflow_saturates(a != 0))
        u -= 1u << 16;                            /* the largest finite bfloat16 */
    return (uint16_t)(u >> 16);
}

/* --- float8 ------------------------------------------------------------------------- */

static inline float fr_f8_bits_to_float(uint8_t b, fr_f8_format_t f8)
{
    uint32_t sign = (uint32_t)(b & 0x80) << 24, u;
    uint32_t top = (1u << (7 - f8.mant)) - 1, mask = (1u << f8.mant) - 1;
    uint32_t e = (b >> f8.mant) & top, m = b & mask;
    float f;
    if (e == top && (!f8.fn || m == mask))        /* infinity or NaN */
        u = sign | 0x7f800000u | (m << (23 - f8.mant));
    else if (e != 0)
        u = sign | ((e - f8.bias + 127) << 23) | (m << (23 - f8.mant));
    else {                                        /* subnormal: m * 2**(1 - bias - mant) */
        uint32_t scale = (uint32_t)(1 - f8.bias - f8.mant + 127) << 23;
        float s;
        memcpy(&s, &scale, 4);
        f = (float)m * s;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    memcpy(&f, &u, 4);
    return f;
}

static inline uint8_t fr_float_to_f8_bits(float x, fr_f8_format_t f8)
{
    uint32_t u, a, sign, mask = (1u << f8.mant) - 1;
    int emin = 1 - f8.bias, emax = (int)((1u << (7 - f8.mant)) - 1) - f8.bias - !f8.fn;
    uint8_t inf = f8.fn ? 0x7f : (uint8_t)(0x7f & ~mask);         /* e4m3fn: NaN */
    uint8_t largest = f8.fn ? 0x7e : (uint8_t)(inf - 1);
    double r;
    float rf;
    int e;
    memcpy(&u, &x, 4);
    sign = (u >> 24) & 0x80;
    a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {                        /* NaN: its top bits, still a NaN */
        uint8_t m = (uint8_t)((a >> (23 - f8.mant)) & mask);
        return (uint8_t)(sign | (f8.fn ? 0x7f : inf | (m ? m : 1u << (f8.mant - 1))));
    }
    if (a == 0x7f800000u)
        return (uint8_t)(sign | inf);
    r = fr_round_to_format(x, f8.mant, emin);
    rf = (float)(r < 0 ? -r : r);
    memcpy(&a, &rf, 4);
    e = (int)(a >> 23) - 127;
    if (e > emax || (f8.fn && e == emax && ((a >> (23 - f8.mant)) & mask) == mask))
        return (uint8_t)(sign | (fr_overflow_saturates(sign != 0) ? largest : inf));
    if (e >= emin)
        return (uint8_t)(sign | ((uint32_t)(e + f8.bias) << f8.mant)
                         | ((a >> (23 - f8.mant)) & mask));
    {   /* subnormal or zero: |r| / 2**(emin - mant), an integer */
        uint32_t scale = (uint32_t)(f8.mant - emin + 127) << 23;
        float s;
        memcpy(&s, &scale, 4);
        return (uint8_t)(sign | (uint32_t)(rf * s));
    }
}

/* --- block conversions for the loops (the signatures of _half.h's) -------------------- */

static inline int fr_bf16_to_float(const char *src, npy_intp step, float *dst, npy_intp n)
{
    for (npy_intp i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, src + i * step, 2);
        dst[i] = fr_bf16_bits_to_float(b);
    }
    return 1;
}

static inline void fr_float_to_bf16(const float *src, char *dst, npy_intp step, npy_intp n,
                                    int exact)
{
    (void)exact;
    for (npy_intp i = 0; i < n; i++) {
        uint16_t b = fr_float_to_bf16_bits(src[i]);
        memcpy(dst + i * step, &b, 2);
    }
}

#define FR_F8_BLOCKS(NAME, FORMAT)                                                           \
static inline int fr_##NAME##_to_float(const char *src, npy_intp step, float *dst,          \
                                        npy_intp n)                                          \
{                                                                                            \
    for (npy_intp i = 0; i < n; i++)                                                         \
        dst[i] = fr_f8_bits_to_float((uint8_t)src[i * step], FORMAT);                        \
    return 1;                                                                                \
}                                                                                            \
static inline void fr_float_to_##NAME(const float *src, char *dst, npy_intp step,           \
                                      npy_intp n, int exact)                                 \
{                                                                                            \
    (void)exact;                                                                             \
    for (npy_intp i = 0; i < n; i++)                                                         \
        dst[i * step] = (char)fr_float_to_f8_bits(src[i], FORMAT);                           \
}

FR_F8_BLOCKS(e4m3, FR_E4M3FN)
FR_F8_BLOCKS(e5m2, FR_E5M2)

#endif
