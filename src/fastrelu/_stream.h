/* ReLU with non-temporal (streaming) stores, for outputs larger than the caches.
 *
 * A streamed store bypasses the caches: it saves the read-for-ownership of
 * every destination line (a third of the memory traffic of an out-of-place
 * ReLU) and does not evict the input. It needs whole aligned vectors, so this
 * loop is written with GCC vector extensions (one vector of the widest width
 * of the instruction set the including module is compiled for) rather than
 * left to the auto-vectorizer. The comparison is the same integer one as in
 * _kernels.pxi: out = 0 if bits <= neg else bits.
 *
 * Contract: contiguous x and out of n elements that do not overlap.
 */
#ifndef FASTRELU_STREAM_H
#define FASTRELU_STREAM_H

#include <stdint.h>
#include <string.h>
#include <numpy/npy_common.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define FR_VBYTES 64
#define FR_STREAM(p, v) _mm512_stream_si512((void *)(p), (__m512i)(v))
#elif defined(__AVX2__)
#include <immintrin.h>
#define FR_VBYTES 32
#define FR_STREAM(p, v) _mm256_stream_si256((__m256i *)(p), (__m256i)(v))
#elif defined(__SSE2__)
#include <emmintrin.h>
#define FR_VBYTES 16
#define FR_STREAM(p, v) _mm_stream_si128((__m128i *)(p), (__m128i)(v))
#endif

#ifdef FR_VBYTES
#define FR_SFENCE() _mm_sfence()
#define FR_DEFINE_RELU_STREAM(T)                                                   \
typedef T fr_vec_##T __attribute__((vector_size(FR_VBYTES)));                      \
static void fr_relu_stream_##T(const T *x, npy_intp sx, T *out, npy_intp so,       \
                               npy_intp n, const T *c)                             \
{                                                                                  \
    const T neg = c[0];                                                            \
    const npy_intp per = FR_VBYTES / (npy_intp)sizeof(T);                          \
    const fr_vec_##T negv = (fr_vec_##T){0} + neg;                                 \
    npy_intp i = 0;                                                                \
    (void)sx; (void)so;                                                            \
    for (; i < n && ((uintptr_t)(out + i) % FR_VBYTES) != 0; i++)                  \
        out[i] = x[i] <= neg ? 0 : x[i];                                           \
    for (; i + per <= n; i += per) {                                               \
        fr_vec_##T v;                                                              \
        memcpy(&v, x + i, sizeof v);                                               \
        v &= ~(fr_vec_##T)(v <= negv);                                             \
        FR_STREAM(out + i, v);                                                     \
    }                                                                              \
    FR_SFENCE();                                                                   \
    for (; i < n; i++)                                                             \
        out[i] = x[i] <= neg ? 0 : x[i];                                           \
}
#else   /* no streaming stores on this architecture: plain stores */
#define FR_DEFINE_RELU_STREAM(T)                                                   \
static void fr_relu_stream_##T(const T *x, npy_intp sx, T *out, npy_intp so,       \
                               npy_intp n, const T *c)                             \
{                                                                                  \
    const T neg = c[0];                                                            \
    (void)sx; (void)so;                                                            \
    for (npy_intp i = 0; i < n; i++)                                               \
        out[i] = x[i] <= neg ? 0 : x[i];                                           \
}
#endif

FR_DEFINE_RELU_STREAM(int8_t)
FR_DEFINE_RELU_STREAM(int16_t)
FR_DEFINE_RELU_STREAM(int32_t)
FR_DEFINE_RELU_STREAM(int64_t)
FR_DEFINE_RELU_STREAM(uint8_t)
FR_DEFINE_RELU_STREAM(uint16_t)
FR_DEFINE_RELU_STREAM(uint32_t)
FR_DEFINE_RELU_STREAM(uint64_t)

#endif
