/* The kernels of the fused operations that are not one elementwise loop:
 * the packed 1-bit ReLU mask (relu_with_mask, relu_backward_mask), the count of
 * positive elements (relu_with_counts) and the float accumulation of a bias
 * gradient (bias_relu_backward). The elementwise half of each fused operation
 * is the registry's own loop (relu, relu_backward, add_relu); the engine
 * (_engine.pyx, "fused operations") runs it tile by tile next to these.
 *
 * Compiled once per instruction-set level (included by _loops.pxi) and
 * written once for every element width through the macros below; the AVX-512
 * paths use the compare-to-mask instructions, which produce the packed bits
 * directly. Every kernel works on the element's integer bits ("carrier"), as
 * the bits family does: x > 0 is ``0 < bits <= POS`` (floats: POS = bits of
 * +inf, so NaNs are not positive; integers: the maximum).
 *
 * The accumulations give the same bits at every level: each adds the
 * elements in one fixed order, either lane by lane across a row (acc[j] +=
 * v[j], no reduction) or into 16 fixed lanes that are summed in a fixed tree
 * (a vector of any width adds the same lanes in the same order; GCC never
 * reorders float additions without -ffast-math, which fastrelu never uses).
 */
#ifndef FASTRELU_FUSED_H
#define FASTRELU_FUSED_H

#include <stdint.h>
#include <string.h>
#include "_loops.h"
#include "_stream.h"
#include "_half.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define FR_FUSED_AVX512 1
#endif

typedef void (*fr_pack_fn)(const char *x, uint8_t *mask, npy_intp n, const fr_consts_t *c);
typedef void (*fr_unmask_fn)(const char *g, const uint8_t *mask, char *out, npy_intp n);
typedef int64_t (*fr_count_fn)(const char *x, npy_intp n, const fr_consts_t *c);

#define FR_K_POS 1      /* _loops.pxd: K_POS */
#define FR_LANES 16

/* --- portable kernels, one set per carrier type --------------------------------- */

/* pack: bit i of mask (little-endian bit order) = x[i] > 0, for n elements
   from a byte boundary; the unused high bits of the last byte are 0 (as
   numpy.packbits pads). */
#define FR_PORTABLE(T, S)                                                              \
static void fr_pack_portable_##S(const char *xp, uint8_t *mask, npy_intp n,            \
                                 const fr_consts_t *c)                                 \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const T pos = ((const T *)c->bits_storage)[FR_K_POS];                              \
    npy_intp i, b;                                                                     \
    for (i = 0; i + 8 <= n; i += 8) {                                                  \
        unsigned m = 0;                                                                \
        for (b = 0; b < 8; b++)                                                        \
            m |= (unsigned)((x[i + b] > 0) & (x[i + b] <= pos)) << b;                 \
        mask[i / 8] = (uint8_t)m;                                                      \
    }                                                                                  \
    if (i < n) {                                                                       \
        unsigned m = 0;                                                                \
        for (b = 0; i + b < n; b++)                                                    \
            m |= (unsigned)((x[i + b] > 0) & (x[i + b] <= pos)) << b;                 \
        mask[i / 8] = (uint8_t)m;                                                      \
    }                                                                                  \
}                                                                                      \
                                                                                       \
static int64_t fr_count_portable_##S(const char *xp, npy_intp n, const fr_consts_t *c) \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const T pos = ((const T *)c->bits_storage)[FR_K_POS];                              \
    int64_t total = 0;                                                                 \
    npy_intp i;                                                                        \
    for (i = 0; i < n; i++)                                                            \
        total += (x[i] > 0) & (x[i] <= pos);                                           \
    return total;                                                                      \
}

/* unmask: out[i] = g[i] where bit i of mask is set, else 0 (a selection). */
#define FR_UNMASK_PORTABLE(U, W)                                                       \
static void fr_unmask_portable_##W(const char *gp, const uint8_t *mask, char *op,      \
                                   npy_intp n)                                         \
{                                                                                      \
    const U *g = (const U *)gp;                                                        \
    U *out = (U *)op;                                                                  \
    npy_intp i;                                                                        \
    for (i = 0; i < n; i++)                                                            \
        out[i] = g[i] & (U)(-(U)((mask[i >> 3] >> (i & 7)) & 1));                      \
}

FR_PORTABLE(int8_t, i8)
FR_PORTABLE(int16_t, i16)
FR_PORTABLE(int32_t, i32)
FR_PORTABLE(int64_t, i64)
FR_PORTABLE(uint8_t, u8)
FR_PORTABLE(uint16_t, u16)
FR_PORTABLE(uint32_t, u32)
FR_PORTABLE(uint64_t, u64)
FR_UNMASK_PORTABLE(uint8_t, 8)
FR_UNMASK_PORTABLE(uint16_t, 16)
FR_UNMASK_PORTABLE(uint32_t, 32)
FR_UNMASK_PORTABLE(uint64_t, 64)

/* --- AVX-512: compares that produce the packed bits -------------------------------- */

#ifdef FR_FUSED_AVX512
/* VB: elements per 64-byte vector; MT: the mask type; the positive test as
   a compare-to-mask for signed carriers (0 < x <= POS) and unsigned ones (x != 0). */
#define FR_AVX512(T, S, VB, MT, SET1)                                                 \
static void fr_pack_##S(const char *xp, uint8_t *mask, npy_intp n,                     \
                        const fr_consts_t *c)                                          \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const __m512i zero = _mm512_setzero_si512();                                       \
    const __m512i pos = SET1(((const T *)c->bits_storage)[FR_K_POS]);                  \
    npy_intp i;                                                                        \
    (void)pos; (void)zero;                                                             \
    for (i = 0; i + VB <= n; i += VB) {                                                \
        __m512i v = _mm512_loadu_si512((const void *)(x + i));                         \
        MT m = FR_POSITIVE_##S(v);                                                     \
        memcpy(mask + i / 8, &m, sizeof(m));                                           \
    }                                                                                  \
    if (i < n)                                                                         \
        fr_pack_portable_##S((const char *)(x + i), mask + i / 8, n - i, c);           \
}                                                                                      \
                                                                                       \
static int64_t fr_count_##S(const char *xp, npy_intp n, const fr_consts_t *c)          \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const __m512i zero = _mm512_setzero_si512();                                       \
    const __m512i pos = SET1(((const T *)c->bits_storage)[FR_K_POS]);                  \
    int64_t total = 0;                                                                 \
    npy_intp i;                                                                        \
    (void)pos; (void)zero;                                                             \
    for (i = 0; i + VB <= n; i += VB) {                                                \
        __m512i v = _mm512_loadu_si512((const void *)(x + i));                         \
        total += __builtin_popcountll((unsigned long long)FR_POSITIVE_##S(v));         \
    }                                                                                  \
    return total + fr_count_portable_##S((const char *)(x + i), n - i, c);             \
}

#define FR_UNMASK_AVX512(U, W, VB, MT, MASKZ_LOAD)                                      \
static void fr_unmask_##W(const char *gp, const uint8_t *mask, char *op, npy_intp n)  \
{                                                                                      \
    const U *g = (const U *)gp;                                                        \
    U *out = (U *)op;                                                                  \
    npy_intp i;                                                                        \
    for (i = 0; i + VB <= n; i += VB) {                                                \
        MT m;                                                                          \
        memcpy(&m, mask + i / 8, sizeof(m));                                           \
        _mm512_storeu_si512((void *)(out + i), MASKZ_LOAD(m, (const void *)(g + i)));  \
    }                                                                                  \
    if (i < n)                                                                         \
        fr_unmask_portable_##W((const char *)(g + i), mask + i / 8, (char *)(out + i), \
                               n - i);                                                 \
}

#define FR_SIGNED_POSITIVE(GT, LE) (GT(v, zero) & LE(v, pos))
#define FR_POSITIVE_i8(v) FR_SIGNED_POSITIVE(_mm512_cmpgt_epi8_mask, _mm512_cmple_epi8_mask)
#define FR_POSITIVE_i16(v) FR_SIGNED_POSITIVE(_mm512_cmpgt_epi16_mask, _mm512_cmple_epi16_mask)
#define FR_POSITIVE_i32(v) FR_SIGNED_POSITIVE(_mm512_cmpgt_epi32_mask, _mm512_cmple_epi32_mask)
#define FR_POSITIVE_i64(v) FR_SIGNED_POSITIVE(_mm512_cmpgt_epi64_mask, _mm512_cmple_epi64_mask)
#define FR_POSITIVE_u8(v) _mm512_cmpneq_epu8_mask(v, zero)
#define FR_POSITIVE_u16(v) _mm512_cmpneq_epu16_mask(v, zero)
#define FR_POSITIVE_u32(v) _mm512_cmpneq_epu32_mask(v, zero)
#define FR_POSITIVE_u64(v) _mm512_cmpneq_epu64_mask(v, zero)

FR_AVX512(int8_t, i8, 64, __mmask64, _mm512_set1_epi8)
FR_AVX512(int16_t, i16, 32, __mmask32, _mm512_set1_epi16)
FR_AVX512(int32_t, i32, 16, __mmask16, _mm512_set1_epi32)
FR_AVX512(int64_t, i64, 8, __mmask8, _mm512_set1_epi64)
FR_AVX512(uint8_t, u8, 64, __mmask64, _mm512_set1_epi8)
FR_AVX512(uint16_t, u16, 32, __mmask32, _mm512_set1_epi16)
FR_AVX512(uint32_t, u32, 16, __mmask16, _mm512_set1_epi32)
FR_AVX512(uint64_t, u64, 8, __mmask8, _mm512_set1_epi64)
FR_UNMASK_AVX512(uint8_t, 8, 64, __mmask64, _mm512_maskz_loadu_epi8)
FR_UNMASK_AVX512(uint16_t, 16, 32, __mmask32, _mm512_maskz_loadu_epi16)
FR_UNMASK_AVX512(uint32_t, 32, 16, __mmask16, _mm512_maskz_loadu_epi32)
FR_UNMASK_AVX512(uint64_t, 64, 8, __mmask8, _mm512_maskz_loadu_epi64)
#elif defined(__AVX2__)
/* AVX2: compares, then movemask gathers one bit per lane. POSITIVE(v) gives
   the packed bits of VB elements (VB = 32 bytes / element size). */
#include <immintrin.h>
static inline unsigned fr_bits_i8(__m256i v, __m256i z, __m256i p)
{ return (unsigned)_mm256_movemask_epi8(_mm256_andnot_si256(_mm256_cmpgt_epi8(v, p),
                                                            _mm256_cmpgt_epi8(v, z))); }
static inline unsigned fr_bits_i16(__m256i v, __m256i z, __m256i p)
{
    __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi16(v, p), _mm256_cmpgt_epi16(v, z));
    return (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm256_castsi256_si128(m),
                                                       _mm256_extracti128_si256(m, 1)));
}
static inline unsigned fr_bits_i32(__m256i v, __m256i z, __m256i p)
{ return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(
      _mm256_andnot_si256(_mm256_cmpgt_epi32(v, p), _mm256_cmpgt_epi32(v, z)))); }
static inline unsigned fr_bits_i64(__m256i v, __m256i z, __m256i p)
{ return (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(
      _mm256_andnot_si256(_mm256_cmpgt_epi64(v, p), _mm256_cmpgt_epi64(v, z)))); }
static inline unsigned fr_bits_u8(__m256i v, __m256i z, __m256i p)
{ (void)p; return ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, z)); }
static inline unsigned fr_bits_u16(__m256i v, __m256i z, __m256i p)
{
    __m256i m = _mm256_cmpeq_epi16(v, z);
    (void)p;
    return ~(unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm256_castsi256_si128(m),
                                                        _mm256_extracti128_si256(m, 1))) & 0xffffu;
}
static inline unsigned fr_bits_u32(__m256i v, __m256i z, __m256i p)
{ (void)p; return ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, z))) & 0xffu; }
static inline unsigned fr_bits_u64(__m256i v, __m256i z, __m256i p)
{ (void)p; return ~(unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(v, z))) & 0xfu; }

/* a byte of mask per 8 elements: 1 vector (32-bit), 2 (64-bit), or 2/4 bytes
   per vector (16/8-bit) */
#define FR_AVX2(T, S, VB, SET1)                                                        \
static void fr_pack_##S(const char *xp, uint8_t *mask, npy_intp n,                     \
                        const fr_consts_t *c)                                          \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const __m256i z = _mm256_setzero_si256();                                          \
    const __m256i p = SET1(((const T *)c->bits_storage)[FR_K_POS]);                    \
    npy_intp i;                                                                        \
    for (i = 0; i + 2 * VB <= n && i + 16 <= n; i += (VB >= 8 ? VB : 2 * VB)) {        \
        unsigned m = fr_bits_##S(_mm256_loadu_si256((const __m256i *)(x + i)), z, p);  \
        if (VB < 8)                                                                    \
            m |= fr_bits_##S(_mm256_loadu_si256((const __m256i *)(x + i + VB)), z, p)  \
                 << VB;                                                                \
        memcpy(mask + i / 8, &m, (VB >= 8 ? VB : 2 * VB) / 8);                         \
    }                                                                                  \
    if (i < n)                                                                         \
        fr_pack_portable_##S((const char *)(x + i), mask + i / 8, n - i, c);           \
}                                                                                      \
                                                                                       \
static int64_t fr_count_##S(const char *xp, npy_intp n, const fr_consts_t *c)          \
{                                                                                      \
    const T *x = (const T *)xp;                                                        \
    const __m256i z = _mm256_setzero_si256();                                          \
    const __m256i p = SET1(((const T *)c->bits_storage)[FR_K_POS]);                    \
    int64_t total = 0;                                                                 \
    npy_intp i;                                                                        \
    for (i = 0; i + VB <= n; i += VB)                                                  \
        total += __builtin_popcount(                                                   \
            fr_bits_##S(_mm256_loadu_si256((const __m256i *)(x + i)), z, p));          \
    return total + fr_count_portable_##S((const char *)(x + i), n - i, c);             \
}

FR_AVX2(int8_t, i8, 32, _mm256_set1_epi8)
FR_AVX2(int16_t, i16, 16, _mm256_set1_epi16)
FR_AVX2(int32_t, i32, 8, _mm256_set1_epi32)
FR_AVX2(int64_t, i64, 4, _mm256_set1_epi64x)
FR_AVX2(uint8_t, u8, 32, _mm256_set1_epi8)
FR_AVX2(uint16_t, u16, 16, _mm256_set1_epi16)
FR_AVX2(uint32_t, u32, 8, _mm256_set1_epi32)
FR_AVX2(uint64_t, u64, 4, _mm256_set1_epi64x)

/* unmask: each lane tests its own bit of the broadcast mask bits */
static void fr_unmask_32(const char *gp, const uint8_t *mask, char *op, npy_intp n)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    npy_intp i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256i b = _mm256_and_si256(_mm256_set1_epi32(mask[i / 8]), bit);
        __m256i g = _mm256_loadu_si256((const __m256i *)(gp + 4 * i));
        _mm256_storeu_si256((__m256i *)(op + 4 * i),
                            _mm256_and_si256(g, _mm256_cmpeq_epi32(b, bit)));
    }
    if (i < n)
        fr_unmask_portable_32(gp + 4 * i, mask + i / 8, op + 4 * i, n - i);
}

static void fr_unmask_64(const char *gp, const uint8_t *mask, char *op, npy_intp n)
{
    const __m256i lo = _mm256_setr_epi64x(1, 2, 4, 8), hi = _mm256_setr_epi64x(16, 32, 64, 128);
    npy_intp i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256i m = _mm256_set1_epi64x(mask[i / 8]);
        __m256i g0 = _mm256_loadu_si256((const __m256i *)(gp + 8 * i));
        __m256i g1 = _mm256_loadu_si256((const __m256i *)(gp + 8 * i + 32));
        _mm256_storeu_si256((__m256i *)(op + 8 * i),
                            _mm256_and_si256(g0, _mm256_cmpeq_epi64(_mm256_and_si256(m, lo), lo)));
        _mm256_storeu_si256((__m256i *)(op + 8 * i + 32),
                            _mm256_and_si256(g1, _mm256_cmpeq_epi64(_mm256_and_si256(m, hi), hi)));
    }
    if (i < n)
        fr_unmask_portable_64(gp + 8 * i, mask + i / 8, op + 8 * i, n - i);
}

static void fr_unmask_16(const char *gp, const uint8_t *mask, char *op, npy_intp n)
{
    const __m256i bit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048,
                                          4096, 8192, 16384, (short)32768);
    npy_intp i;
    for (i = 0; i + 16 <= n; i += 16) {
        uint16_t w;
        memcpy(&w, mask + i / 8, 2);
        __m256i b = _mm256_and_si256(_mm256_set1_epi16((short)w), bit);
        __m256i g = _mm256_loadu_si256((const __m256i *)(gp + 2 * i));
        _mm256_storeu_si256((__m256i *)(op + 2 * i),
                            _mm256_and_si256(g, _mm256_cmpeq_epi16(b, bit)));
    }
    if (i < n)
        fr_unmask_portable_16(gp + 2 * i, mask + i / 8, op + 2 * i, n - i);
}

static void fr_unmask_8(const char *gp, const uint8_t *mask, char *op, npy_intp n)
{
    /* byte k of the 4 mask bytes to lanes 8k..8k+7, then one bit per lane */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    npy_intp i;
    for (i = 0; i + 32 <= n; i += 32) {
        uint32_t w;
        memcpy(&w, mask + i / 8, 4);
        /* shuffle_epi8 works within 128-bit halves: broadcast w to both */
        __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), spread);
        __m256i g = _mm256_loadu_si256((const __m256i *)(gp + i));
        _mm256_storeu_si256((__m256i *)(op + i),
                            _mm256_and_si256(g, _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit)));
    }
    if (i < n)
        fr_unmask_portable_8(gp + i, mask + i / 8, op + i, n - i);
}
#else
#define FR_ALIAS(S)                                                                    \
static void fr_pack_##S(const char *x, uint8_t *m, npy_intp n, const fr_consts_t *c)  \
{ fr_pack_portable_##S(x, m, n, c); }                                                  \
static int64_t fr_count_##S(const char *x, npy_intp n, const fr_consts_t *c)           \
{ return fr_count_portable_##S(x, n, c); }
FR_ALIAS(i8) FR_ALIAS(i16) FR_ALIAS(i32) FR_ALIAS(i64)
FR_ALIAS(u8) FR_ALIAS(u16) FR_ALIAS(u32) FR_ALIAS(u64)
#define FR_UNMASK_ALIAS(W)                                                             \
static void fr_unmask_##W(const char *g, const uint8_t *m, char *o, npy_intp n)       \
{ fr_unmask_portable_##W(g, m, o, n); }
FR_UNMASK_ALIAS(8) FR_UNMASK_ALIAS(16) FR_UNMASK_ALIAS(32) FR_UNMASK_ALIAS(64)
#endif

/* --- single-pass kernels: the elementwise result and the extra part ----------------------
   One signature (fr_fused_fn): inputs a (and b), the elementwise output, the
   extra output ``aux`` and ``k0``, where the call's first element sits in
   it (a mask bit, a column of a row of ``period`` columns, a lane), so that
   fr_fused_run can hand any stretch of elements to them, tile by tile. Each
   reads its inputs before it writes (so ``out`` may be an input). */

typedef void (*fr_fused_fn)(const char *a, const char *b, char *out, void *aux, npy_intp k0,
                            npy_intp n, npy_intp period, const fr_consts_t *c);

#define FR_K_NEG 0      /* _loops.pxd: K_NEG */
#define FR_BLOCK 256    /* elements per block of the two-loop kernels (L1) */

#define FR_FUSED_BITS(T, S)                                                            \
/* relu and the packed mask: per block of FR_BLOCK, the bits, then relu            \
   (k0 a multiple of 8: the call starts on a byte of the mask) */                  \
static void fr_relu_pack_##S(const char *ap, const char *bp, char *op, void *aux,      \
                             npy_intp k0, npy_intp n, npy_intp period,                 \
                             const fr_consts_t *c)                                     \
{                                                                                      \
    const T *x = (const T *)ap;                                                        \
    T *out = (T *)op;                                                                  \
    uint8_t *mask = (uint8_t *)aux + k0 / 8;                                           \
    const T neg = ((const T *)c->bits_storage)[FR_K_NEG];                              \
    npy_intp i, j, m;                                                                  \
    (void)bp; (void)period;                                                            \
    for (i = 0; i < n; i += FR_BLOCK) {                                                \
        m = n - i < FR_BLOCK ? n - i : FR_BLOCK;                                       \
        fr_pack_##S((const char *)(x + i), mask + i / 8, m, c);                        \
        for (j = i; j < i + m; j++)                                                    \
            out[j] = x[j] & (T)(-(T)(x[j] > neg));                                     \
    }                                                                                  \
}                                                                                      \
                                                                                       \
/* relu, and counts[col] += x > 0 for rows of ``period`` columns (int32 counts) */     \
static void fr_relu_count_cols_##S(const char *ap, const char *bp, char *op, void *aux,\
                                   npy_intp k0, npy_intp n, npy_intp period,           \
                                   const fr_consts_t *c)                               \
{                                                                                      \
    const T *x = (const T *)ap;                                                        \
    T *out = (T *)op;                                                                  \
    int32_t *counts = (int32_t *)aux;                                                  \
    const T neg = ((const T *)c->bits_storage)[FR_K_NEG];                              \
    const T pos = ((const T *)c->bits_storage)[FR_K_POS];                              \
    npy_intp i = 0, j = k0 % period, m, t;                                             \
    (void)bp;                                                                          \
    while (i < n) {                                                                    \
        m = n - i < period - j ? n - i : period - j;                                   \
        for (t = 0; t < m; t++) {                                                      \
            T v = x[i + t];                                                            \
            counts[j + t] += (v > 0) & (v <= pos);                                     \
            out[i + t] = v & (T)(-(T)(v > neg));                                       \
        }                                                                              \
        i += m;                                                                        \
        j = 0;                                                                         \
    }                                                                                  \
}                                                                                      \
                                                                                       \
/* relu, and *(int64_t *)aux += the count of x > 0 (one segment) */                    \
static void fr_relu_count_##S(const char *ap, const char *bp, char *op, void *aux,     \
                              npy_intp k0, npy_intp n, npy_intp period,                \
                              const fr_consts_t *c)                                    \
{                                                                                      \
    const T *x = (const T *)ap;                                                        \
    T *out = (T *)op;                                                                  \
    const T neg = ((const T *)c->bits_storage)[FR_K_NEG];                              \
    const T pos = ((const T *)c->bits_storage)[FR_K_POS];                              \
    int64_t total = 0;                                                                 \
    npy_intp i;                                                                        \
    (void)bp; (void)k0; (void)period;                                                  \
    for (i = 0; i < n; i++) {                                                          \
        T v = x[i];                                                                    \
        total += (v > 0) & (v <= pos);                                                 \
        out[i] = v & (T)(-(T)(v > neg));                                               \
    }                                                                                  \
    *(int64_t *)aux += total;                                                          \
}

FR_FUSED_BITS(int8_t, i8)
FR_FUSED_BITS(int16_t, i16)
FR_FUSED_BITS(int32_t, i32)
FR_FUSED_BITS(int64_t, i64)
FR_FUSED_BITS(uint8_t, u8)
FR_FUSED_BITS(uint16_t, u16)
FR_FUSED_BITS(uint32_t, u32)
FR_FUSED_BITS(uint64_t, u64)

static inline float fr_f16_bits_to_float(int16_t b) { return fr_half_bits_to_float((uint16_t)b); }
static inline float fr_bits_to_float(int32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline double fr_bits_to_double(int64_t b) { double d; memcpy(&d, &b, 8); return d; }

/* relu_backward and the bias gradient's sums. The gradient element is
   ``g where y > 0, else +0`` (bits B), added as A. acc_cols: acc[k0 + i] +=
   it (a stretch of one row); acc_lanes: lanes[(k0 + i) % 16] += it (a
   stretch of one segment, whose 16 lanes are summed in a fixed tree later).
   float16 values are converted exactly to float32 and added in float32. */
#define FR_FUSED_ACC(B, A, S, CONV)                                                    \
static void fr_backward_acc_cols_##S(const char *gp, const char *yp, char *op,        \
                                     void *aux, npy_intp k0, npy_intp n,               \
                                     npy_intp period, const fr_consts_t *c)            \
{                                                                                      \
    const B *g = (const B *)gp, *y = (const B *)yp;                                    \
    B *out = (B *)op;                                                                  \
    A *acc = (A *)aux + k0;                                                            \
    const B pos = ((const B *)c->bits_storage)[FR_K_POS];                              \
    npy_intp i;                                                                        \
    (void)period;                                                                      \
    for (i = 0; i < n; i++) {                                                          \
        B bits = g[i] & (B)(-(B)((y[i] > 0) & (y[i] <= pos)));                         \
        out[i] = bits;                                                                 \
        acc[i] += CONV(bits);                                                          \
    }                                                                                  \
}                                                                                      \
                                                                                       \
static void fr_backward_acc_lanes_##S(const char *gp, const char *yp, char *op,       \
                                      void *aux, npy_intp k0, npy_intp n,              \
                                      npy_intp period, const fr_consts_t *c)           \
{                                                                                      \
    const B *g = (const B *)gp, *y = (const B *)yp;                                    \
    B *out = (B *)op;                                                                  \
    A *lanes = (A *)aux;                                                               \
    const B pos = ((const B *)c->bits_storage)[FR_K_POS];                              \
    B bits[FR_LANES];                                                                  \
    npy_intp i = 0;                                                                    \
    int l;                                                                             \
    (void)period;                                                                      \
    for (; i < n && (k0 + i) % FR_LANES; i++) {                                        \
        B b = g[i] & (B)(-(B)((y[i] > 0) & (y[i] <= pos)));                            \
        out[i] = b;                                                                    \
        lanes[(k0 + i) % FR_LANES] += CONV(b);                                         \
    }                                                                                  \
    for (; i + FR_LANES <= n; i += FR_LANES) {                                         \
        for (l = 0; l < FR_LANES; l++) {                                               \
            bits[l] = g[i + l] & (B)(-(B)((y[i + l] > 0) & (y[i + l] <= pos)));        \
            out[i + l] = bits[l];                                                      \
        }                                                                              \
        for (l = 0; l < FR_LANES; l++)                                                 \
            lanes[l] += CONV(bits[l]);                                                 \
    }                                                                                  \
    for (l = 0; i < n; i++, l++) {                                                     \
        B b = g[i] & (B)(-(B)((y[i] > 0) & (y[i] <= pos)));                            \
        out[i] = b;                                                                    \
        lanes[l] += CONV(b);                                                           \
    }                                                                                  \
}

FR_FUSED_ACC(int32_t, float, f32, fr_bits_to_float)
FR_FUSED_ACC(int64_t, double, f64, fr_bits_to_double)
FR_FUSED_ACC(int16_t, float, f16, fr_f16_bits_to_float)

/* One of the kernels above over n elements: with non-temporal stores of the
   elementwise output when ``stream`` (and ``out`` is 64-byte aligned), tile by
   tile through L1 as fr_stream_run does, the next tile's inputs prefetched. */
static void fr_fused_run(fr_fused_fn fn, npy_intp size, const char *a, const char *b,
                         char *out, void *aux, npy_intp k0, npy_intp n, npy_intp period,
                         int stream, const fr_consts_t *c)
{
#ifdef FR_VBYTES
    if (stream && (uintptr_t)out % 64 == 0) {
        char tile[FR_TILE_BYTES] __attribute__((aligned(64)));
        const npy_intp per = FR_TILE_BYTES / size;     /* a multiple of 16 elements */
        npy_intp i, t;
        for (i = 0; i + per <= n; i += per) {
            fn(a + i * size, b ? b + i * size : NULL, tile, aux, k0 + i, per, period, c);
            for (t = 0; t < FR_TILE_BYTES; t += FR_VBYTES) {
                if (t % 64 == 0) {
                    _mm_prefetch(a + (i + per) * size + t, _MM_HINT_T0);
                    if (b)
                        _mm_prefetch(b + (i + per) * size + t, _MM_HINT_T0);
                }
                FR_STREAM(out + i * size + t, tile + t);
            }
        }
        _mm_sfence();
        if (i < n)
            fn(a + i * size, b ? b + i * size : NULL, out + i * size, aux, k0 + i, n - i,
               period, c);
        return;
    }
#endif
    (void)stream;
    fn(a, b, out, aux, k0, n, period, c);
}

/* unmask with non-temporal stores (large outputs, as fr_stream_run does for
   the elementwise loops): a tile in L1, then copied out; ``out`` 64-byte
   aligned, else plain stores. */
static void fr_unmask_run(fr_unmask_fn fn, npy_intp size, const char *g, const uint8_t *mask,
                          char *out, npy_intp n, int stream)
{
#ifdef FR_VBYTES
    if (stream && (uintptr_t)out % 64 == 0) {
        char tile[FR_TILE_BYTES] __attribute__((aligned(64)));
        const npy_intp per = FR_TILE_BYTES / size;     /* a multiple of 8 elements */
        npy_intp i, b;
        for (i = 0; i + per <= n; i += per) {
            fn(g + i * size, mask + i / 8, tile, per);
            /* prefetch the next tile of g while the stores drain (as fr_stream_run) */
            for (b = 0; b < FR_TILE_BYTES; b += FR_VBYTES) {
                if (b % 64 == 0)
                    _mm_prefetch(g + (i + per) * size + b, _MM_HINT_T0);
                FR_STREAM(out + i * size + b, tile + b);
            }
        }
        _mm_sfence();
        if (i < n)
            fn(g + i * size, mask + i / 8, out + i * size, n - i);
        return;
    }
#endif
    (void)stream;
    fn(g, mask, out, n);
}

/* --- the table ------------------------------------------------------------------------ */

/* Per column of the loop table (_loops.pxd: S_INT8 ... S_FLOAT64): the carrier
   of the element type; accumulations for the float columns only. */
typedef struct {
    fr_pack_fn pack[11];
    fr_unmask_fn unmask[11];
    fr_count_fn count[11];
    fr_fused_fn relu_pack[11];
    fr_fused_fn relu_count_cols[11];
    fr_fused_fn relu_count[11];
    fr_fused_fn backward_acc_cols[11];
    fr_fused_fn backward_acc_lanes[11];
    void (*run)(fr_fused_fn fn, npy_intp size, const char *a, const char *b, char *out,
                void *aux, npy_intp k0, npy_intp n, npy_intp period, int stream,
                const fr_consts_t *c);
    void (*unmask_run)(fr_unmask_fn fn, npy_intp size, const char *g, const uint8_t *mask,
                       char *out, npy_intp n, int stream);
} fr_fused_table_t;

#define FR_BY_COLUMN(P) {P##i8, P##i16, P##i32, P##i64, P##u8, P##u16, P##u32, P##u64, \
                         P##i16, P##i32, P##i64}

static void fr_fused_fill(fr_fused_table_t *t)
{
    static const fr_pack_fn pack[11] = FR_BY_COLUMN(fr_pack_);
    static const fr_count_fn count[11] = FR_BY_COLUMN(fr_count_);
    static const fr_fused_fn relu_pack[11] = FR_BY_COLUMN(fr_relu_pack_);
    static const fr_fused_fn relu_count_cols[11] = FR_BY_COLUMN(fr_relu_count_cols_);
    static const fr_fused_fn relu_count[11] = FR_BY_COLUMN(fr_relu_count_);
    static const fr_unmask_fn unmask[11] = {
        fr_unmask_8, fr_unmask_16, fr_unmask_32, fr_unmask_64,
        fr_unmask_8, fr_unmask_16, fr_unmask_32, fr_unmask_64,
        fr_unmask_16, fr_unmask_32, fr_unmask_64};
    int s;
    for (s = 0; s < 11; s++) {
        t->pack[s] = pack[s];
        t->count[s] = count[s];
        t->unmask[s] = unmask[s];
        t->relu_pack[s] = relu_pack[s];
        t->relu_count_cols[s] = relu_count_cols[s];
        t->relu_count[s] = relu_count[s];
        t->backward_acc_cols[s] = NULL;
        t->backward_acc_lanes[s] = NULL;
    }
    t->backward_acc_cols[8] = fr_backward_acc_cols_f16;
    t->backward_acc_cols[9] = fr_backward_acc_cols_f32;
    t->backward_acc_cols[10] = fr_backward_acc_cols_f64;
    t->backward_acc_lanes[8] = fr_backward_acc_lanes_f16;
    t->backward_acc_lanes[9] = fr_backward_acc_lanes_f32;
    t->backward_acc_lanes[10] = fr_backward_acc_lanes_f64;
    t->unmask_run = fr_unmask_run;
    t->run = fr_fused_run;
}

#endif
