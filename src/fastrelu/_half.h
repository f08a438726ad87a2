/* float16 <-> float32 for the "real" loops of float16 data (_loops_table.pxi).
 *
 * Those loops convert a block of float16 elements to float32, run the float32
 * loop of the same operation on it and convert the results back: what a
 * per-element conversion does (float16 arithmetic is done in float32, as
 * PyTorch does), but vectorized. With F16C (the avx2 and avx512 modules) the
 * conversions are vcvtph2ps/vcvtps2ph, 8 elements at a time, rounding in the
 * caller's rounding mode; without it (the baseline level, other architectures),
 * portable integer code that needs no _Float16 (clang 14 has none on x86-64)
 * and also rounds in the caller's rounding mode. Measured on
 * the AMD EPYC development VM, 1e6 float16 leaky_relu on one thread: 5.5 ms
 * element by element, 75 us in blocks of 1024 (relu6: 38 us; blocks of 512: 83 us); on
 * x[::2], 115 us (relu6: 150 us; 330 us with an element-by-element gather).
 *
 * NaNs are converted bit for bit both ways (the payload, and the signaling
 * bit, which the hardware conversions would set): an element the operation
 * *selects* (leaky_relu_backward's grad_output where x > 0) keeps its exact
 * bits, while one it *computes* is quieted by the arithmetic, as in float32.
 */
#ifndef FASTRELU_HALF_H
#define FASTRELU_HALF_H

#include <stdint.h>
#include <string.h>
#include <numpy/npy_common.h>

/* the most elements one call converts through a strided operand */
#define FR_HALF_MAX 1024

static inline int fr_half_is_nan(uint16_t h) { return (h & 0x7fff) > 0x7c00; }
static inline uint32_t fr_nan_half_to_float_bits(uint16_t h)
{
    return ((uint32_t)(h & 0x8000) << 16) | 0x7f800000u | ((uint32_t)(h & 0x3ff) << 13);
}
static inline uint16_t fr_nan_float_bits_to_half(uint32_t f)
{
    return (uint16_t)(((f >> 16) & 0x8000) | 0x7c00 | ((f & 0x007fffff) >> 13));
}

/* float16 bits to float32, exactly (NaN payloads kept; a subnormal is its
   integer significand times 2**-24, exact in float). */
static inline float fr_half_bits_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ffu, u;
    float f;
    if (exponent == 0x1f)
        u = sign | 0x7f800000u | (mantissa << 13);
    else if (exponent != 0)
        u = sign | ((exponent + 112) << 23) | (mantissa << 13);
    else {
        f = (float)mantissa * 5.9604644775390625e-08f;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    memcpy(&f, &u, 4);
    return f;
}

/* float32 to float16 bits, rounded in the caller's rounding mode as the
   hardware conversion is (NaNs bit for bit). Adding C = 2**(e + 13), the
   float16 spacing at x's magnitude times 2**23, makes the float addition
   round x to that spacing in the current mode; subtracting C is exact. Every
   magnitude of 65536 or more rounds as 65535 does (to 65504 or infinity,
   by mode), so it is clamped there first. */
static inline uint16_t fr_float_to_half_bits(float x)
{
    uint32_t u, a, sign, c_bits;
    float magnitude, c, r;
    int e;
    memcpy(&u, &x, 4);
    sign = (u >> 16) & 0x8000u;
    a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return fr_nan_float_bits_to_half(u);
    if (a >= 0x47800000u)
        a = a == 0x7f800000u ? a : 0x477fff00u;
    if (a == 0x7f800000u)
        return (uint16_t)(sign | 0x7c00u);
    e = (int)(a >> 23) - 127;
    if (e < -14)
        e = -14;                    /* float16 subnormals: spacing 2**-24 */
    c_bits = (sign << 16) | ((uint32_t)(e + 13 + 127) << 23);
    memcpy(&magnitude, &a, 4);
    memcpy(&c, &c_bits, 4);
    r = ((sign ? -magnitude : magnitude) + c) - c;
    memcpy(&a, &r, 4);
    a &= 0x7fffffffu;
    e = (int)(a >> 23) - 127;
    if (e >= 16)
        return (uint16_t)(sign | 0x7c00u);
    if (e >= -14)
        return (uint16_t)(sign | ((uint32_t)(e + 15) << 10) | ((a >> 13) & 0x3ffu));
    memcpy(&r, &a, 4);
    return (uint16_t)(sign | (uint32_t)(r * 16777216.0f));   /* subnormal or zero */
}

#if defined(__F16C__)
#include <immintrin.h>

static inline float fr_h2f(uint16_t h)
{
    float f;
    uint32_t u;
    if (!fr_half_is_nan(h))
        return _cvtsh_ss(h);
    u = fr_nan_half_to_float_bits(h);
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t fr_f2h(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return fr_nan_float_bits_to_half(u);
    return _cvtss_sh(f, _MM_FROUND_CUR_DIRECTION);
}

/* 8 at a time, NaNs bit for bit (used for blocks that hold a NaN) */
static inline __m256 fr_h2f_8(__m128i h)
{
    __m256 f = _mm256_cvtph_ps(h);
    __m256i wide = _mm256_cvtepu16_epi32(h);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(wide, _mm256_set1_epi32(0x7fff)),
                                     _mm256_set1_epi32(0x7c00));
    __m256i exact = _mm256_or_si256(
        _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(wide, _mm256_set1_epi32(0x8000)), 16),
                        _mm256_set1_epi32(0x7f800000)),
        _mm256_slli_epi32(_mm256_and_si256(wide, _mm256_set1_epi32(0x3ff)), 13));
    return _mm256_castsi256_ps(_mm256_blendv_epi8(_mm256_castps_si256(f), exact, nan));
}

static inline __m128i fr_f2h_8(__m256 f)
{
    __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_CUR_DIRECTION);
    __m256i u = _mm256_castps_si256(f);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    __m256i exact = _mm256_or_si256(
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000)),
                        _mm256_set1_epi32(0x7c00)),
        _mm256_srli_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x007fffff)), 13));
    __m128i exact16 = _mm_packus_epi32(_mm256_castsi256_si128(exact),
                                       _mm256_extracti128_si256(exact, 1));
    __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(nan), _mm256_extracti128_si256(nan, 1));
    return _mm_blendv_epi8(h, exact16, nan16);
}

/* Returns whether the block held a NaN: then it was converted bit for bit,
   and so must the results be (fr_float_to_half's ``exact``). Blocks without
   one take the plain hardware conversions. */
static inline int fr_half_to_float(const char *src, npy_intp step, float *dst, npy_intp n)
{
    uint16_t packed[FR_HALF_MAX];
    __m128i any = _mm_setzero_si128();
    const __m128i mag = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    npy_intp i = 0;
    int nan = 0;
    if (step != 2 && n <= FR_HALF_MAX) {      /* gather, then convert 8 at a time */
        if (step == 4)    /* x[::2]: 16 elements from two loads, packed (while a next one exists) */
            for (; i + 16 < n; i += 16) {
                const __m256i low = _mm256_set1_epi32(0xffff);
                __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + 4 * i)), low);
                __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + 4 * i + 32)), low);
                _mm256_storeu_si256((__m256i *)&packed[i],
                                    _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8));
            }
        for (; i < n; i++)
            memcpy(&packed[i], src + i * step, 2);
        src = (const char *)packed;
        step = 2;
        i = 0;
    }
    if (step == 2) {
#if defined(__AVX512F__)
        {   /* 16 at a time where AVX-512 is there */
            __m256i any16 = _mm256_setzero_si256();
            const __m256i mag16 = _mm256_set1_epi16(0x7fff), inf16 = _mm256_set1_epi16(0x7c00);
            for (; i + 16 <= n; i += 16) {
                __m256i h = _mm256_loadu_si256((const __m256i *)(src + 2 * i));
                any16 = _mm256_or_si256(any16, _mm256_cmpgt_epi16(_mm256_and_si256(h, mag16), inf16));
                _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
            }
            any = _mm_or_si128(_mm256_castsi256_si128(any16), _mm256_extracti128_si256(any16, 1));
        }
#endif
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm_loadu_si128((const __m128i *)(src + 2 * i));
            any = _mm_or_si128(any, _mm_cmpgt_epi16(_mm_and_si128(h, mag), inf));
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
        }
        if (!_mm_testz_si128(any, any)) {
            nan = 1;
            for (npy_intp k = 0; k + 8 <= i; k += 8)
                _mm256_storeu_ps(dst + k, fr_h2f_8(_mm_loadu_si128((const __m128i *)(src + 2 * k))));
        }
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + i * step, 2);
        nan |= fr_half_is_nan(h);
        dst[i] = fr_h2f(h);
    }
    return nan;
}

static inline void fr_float_to_half(const float *src, char *dst, npy_intp step, npy_intp n,
                                    int exact)
{
    uint16_t packed[FR_HALF_MAX];
    npy_intp i = 0;
    if (step != 2 && n <= FR_HALF_MAX) {      /* convert 8 at a time, then scatter */
        fr_float_to_half(src, (char *)packed, 2, n, exact);
        for (i = 0; i < n; i++)
            memcpy(dst + i * step, &packed[i], 2);
        return;
    }
    if (step == 2) {
        if (exact)
            for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(dst + 2 * i), fr_f2h_8(_mm256_loadu_ps(src + i)));
        else {  /* a quiet NaN made by the arithmetic converts the same either way */
#if defined(__AVX512F__)
            for (; i + 16 <= n; i += 16)
                _mm256_storeu_si256((__m256i *)(dst + 2 * i),
                                    _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                                    _MM_FROUND_CUR_DIRECTION));
#endif
            for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(dst + 2 * i),
                                 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_CUR_DIRECTION));
        }
    }
    for (; i < n; i++) {
        uint16_t h = fr_f2h(src[i]);
        memcpy(dst + i * step, &h, 2);
    }
}

#else   /* no F16C: integer code, NaNs by their bits */

static inline int fr_half_to_float(const char *src, npy_intp step, float *dst, npy_intp n)
{
    int nan = 0;
    for (npy_intp i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + i * step, 2);
        nan |= fr_half_is_nan(h);
        dst[i] = fr_half_bits_to_float(h);
    }
    return nan;
}

static inline void fr_float_to_half(const float *src, char *dst, npy_intp step, npy_intp n,
                                    int exact)
{
    (void)exact;    /* fr_float_to_half_bits keeps every NaN's bits */
    for (npy_intp i = 0; i < n; i++) {
        uint16_t h = fr_float_to_half_bits(src[i]);
        memcpy(dst + i * step, &h, 2);
    }
}

#endif
#endif
