/* The runtime facts _engine.pyx needs from C: the CPU's instruction-set level,
 * the process-wide thread-team flag, fork handling and the compiler's name. */
#ifndef FASTRELU_RUNTIME_H
#define FASTRELU_RUNTIME_H

#include <pthread.h>
#include <stdint.h>

#include "_team.h"

#if defined(_MSC_VER) && !defined(__clang__)
#error "fastrelu needs GCC or clang (GNU C: __atomic builtins, pthreads); MSVC is not supported, see docs/packaging.rst"
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* The OS's enabled register state (XCR0): the CPU's feature bits alone do
   not say that the kernel saves the YMM/ZMM registers. */
static inline uint64_t fr_xgetbv0(void)
{
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}
#endif

/* Instruction-set level of this CPU and OS: 0 baseline, 1 AVX2, 2 AVX-512.
   Read with cpuid/xgetbv rather than __builtin_cpu_supports, whose feature
   strings differ between compilers (clang 14 has no "f16c"). AVX2 also needs
   F16C (float16 conversions) and POPCNT (-mavx2 implies SSE4.2, so the
   compiler may use it; the mask counts do); AVX-512 needs F, BW, VL, DQ. */
static int fr_cpu_level(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned int eax, ebx, ecx, edx;
    uint64_t xcr0;
    int level = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    if (!(ecx & (1u << 27)) || !(ecx & (1u << 28)) || !(ecx & (1u << 29)) || !(ecx & (1u << 23)))
        return 0;                                   /* OSXSAVE, AVX, F16C, POPCNT */
    xcr0 = fr_xgetbv0();
    if ((xcr0 & 0x6) != 0x6 || __get_cpuid_max(0, NULL) < 7)
        return 0;                                   /* XMM and YMM state */
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (ebx & (1u << 5))
        level = 1;                                  /* AVX2 */
    if (level && (xcr0 & 0xe6) == 0xe6              /* + opmask and ZMM state */
            && (ebx & (1u << 16)) && (ebx & (1u << 17))       /* AVX512F, DQ */
            && (ebx & (1u << 30)) && (ebx & (1u << 31)))      /* BW, VL */
        level = 2;
    return level;
#else
    return 0;
#endif
}

/* The default thread count, and whether the caller is already inside an
   OpenMP parallel region (then fastrelu stays on its thread). Built with
   OpenMP: its current maximum, which follows OMP_NUM_THREADS and
   threadpoolctl's limits. Built without (no omp.h, Apple clang): a count that
   _engine sets from OMP_NUM_THREADS at import and that threadpoolctl reaches
   through the two exported functions below (fastrelu/_threadpoolctl.py). */
#ifdef _OPENMP
#include <omp.h>
#define FR_OPENMP 1
static inline int fr_default_threads(void) { return omp_get_max_threads(); }
static inline int fr_in_parallel(void) { return omp_in_parallel(); }
static inline void fastrelu_set_default_threads(int n) { (void)n; }   /* OpenMP's own */
#else
#define FR_OPENMP 0
static int fr_default_count = 1;
static inline int fr_default_threads(void)
{
    return __atomic_load_n(&fr_default_count, __ATOMIC_RELAXED);
}
static inline int fr_in_parallel(void) { return 0; }
__attribute__((visibility("default"))) int fastrelu_get_default_threads(void)
{
    return fr_default_threads();
}
__attribute__((visibility("default"))) void fastrelu_set_default_threads(int n)
{
    __atomic_store_n(&fr_default_count, n > 0 ? n : 1, __ATOMIC_RELAXED);
}
#endif

/* One team of worker threads for the whole process: a call that finds it
   busy (another Python thread, or a caller already inside a thread pool)
   runs on its own thread instead of oversubscribing the cores. */
static int fr_team_busy = 0;
static inline int fr_team_acquire(void)
{
    return __atomic_exchange_n(&fr_team_busy, 1, __ATOMIC_ACQUIRE) == 0;
}
static inline void fr_team_release(void)
{
    __atomic_store_n(&fr_team_busy, 0, __ATOMIC_RELEASE);
}

/* A forked child has none of the parent's threads: it starts a new team (and
   a call that was running in another thread of the parent is not running). */
static void fr_after_fork_child(void)
{
    fr_team_busy = 0;
    fr_pool_after_fork_child();
}
static int fr_register_atfork(void)
{
    return pthread_atfork(NULL, NULL, fr_after_fork_child);
}

#if defined(__clang__)
static const char *fr_compiler_version = "clang " __VERSION__;
#elif defined(__GNUC__)
static const char *fr_compiler_version = "gcc " __VERSION__;
#else
static const char *fr_compiler_version = "unknown";
#endif

#endif
