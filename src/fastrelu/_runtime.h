/* The runtime facts _engine.pyx needs from C: the CPU's instruction-set level,
 * the process-wide thread-team flag, fork handling and the compiler's name. */
#ifndef FASTRELU_RUNTIME_H
#define FASTRELU_RUNTIME_H

#include <pthread.h>

#include "_team.h"

/* Instruction-set level of this CPU (the OS must also save the registers,
   which libgcc's __builtin_cpu_supports checks): 0 baseline, 1 AVX2, 2 AVX-512. */
static int fr_cpu_level(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("popcnt"))
        return 2;
    /* popcnt: -mavx2 implies SSE4.2 and so POPCNT, which the mask counts use */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")
            && __builtin_cpu_supports("popcnt"))
        return 1;
#endif
    return 0;
}

/* The default thread count: OpenMP's current maximum, which follows
   OMP_NUM_THREADS and threadpoolctl's limits; and whether the caller is
   already inside an OpenMP parallel region (then fastrelu stays on its thread). */
#ifdef _OPENMP
#include <omp.h>
static inline int fr_default_threads(void) { return omp_get_max_threads(); }
static inline int fr_in_parallel(void) { return omp_in_parallel(); }
#else
#error "fastrelu is built with OpenMP (-fopenmp)"
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
