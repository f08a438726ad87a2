/* Non-temporal (streaming) stores for the large-array kernels in _kernels.pxi.
 *
 * A streamed store bypasses the caches: for outputs larger than the last-level
 * cache it saves the read-for-ownership of every destination line, which is up
 * to a third of the memory traffic of an out-of-place ReLU. The widest store of
 * the instruction set the including module is compiled for is used; on other
 * architectures the block is copied with memcpy.
 */
#ifndef FASTRELU_STREAM_H
#define FASTRELU_STREAM_H

#include <string.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#define FR_STREAM_BLOCK 64  /* bytes per block; dst must be aligned to it */

static inline void fr_stream_block(void *dst, const void *src)
{
#if defined(__AVX512F__)
    _mm512_stream_si512((__m512i *)dst, _mm512_loadu_si512(src));
#elif defined(__AVX__)
    const __m256i *s = (const __m256i *)src;
    __m256i *d = (__m256i *)dst;
    _mm256_stream_si256(d, _mm256_loadu_si256(s));
    _mm256_stream_si256(d + 1, _mm256_loadu_si256(s + 1));
#elif defined(__SSE2__)
    const __m128i *s = (const __m128i *)src;
    __m128i *d = (__m128i *)dst;
    _mm_stream_si128(d, _mm_loadu_si128(s));
    _mm_stream_si128(d + 1, _mm_loadu_si128(s + 1));
    _mm_stream_si128(d + 2, _mm_loadu_si128(s + 2));
    _mm_stream_si128(d + 3, _mm_loadu_si128(s + 3));
#else
    memcpy(dst, src, FR_STREAM_BLOCK);
#endif
}

/* Streamed stores are weakly ordered: fence before other threads read them. */
static inline void fr_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

#endif
