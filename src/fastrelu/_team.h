/* fastrelu's thread team: persistent workers, a static split with stealing.
 *
 * Why not an OpenMP parallel region: its closing barrier waits for every team
 * member, so on a busy machine a call stalls until a descheduled worker gets a
 * time slice (measured here: a 4 MB relu taking 12 ms instead of 0.3 ms with
 * the other core loaded), and GNU OpenMP hangs in a child forked after the
 * parent used it.
 *
 * A call is cut into chunks, and the chunks into one contiguous range per
 * thread (the calling thread takes range 0), so that from call to call each
 * thread touches the same memory and keeps it in its own caches. A thread
 * that has finished its range steals chunks from the others, so the caller
 * never waits for a worker that has not started: it only waits for chunks a
 * worker has claimed and is running. A forked child starts a new team.
 *
 * Each range is one 64-bit word, changed atomically:
 *     generation (16 bits) | end chunk (24) | next chunk (24)
 * A thread may run chunk k of a job only after a compare-and-swap moved
 * "next" from k to k + 1 in a word of that generation; the job's fields are
 * then stable until the caller has seen every chunk done.
 *
 * One caller at a time (fr_team_acquire in _runtime.h guards fr_pool_run).
 */
#ifndef FASTRELU_TEAM_H
#define FASTRELU_TEAM_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#ifndef NPY_COMMON_H
#include <numpy/npy_common.h>
#endif

#define FR_POOL_MAX_WORKERS 63
#define FR_POOL_MAX_CHUNKS ((1u << 24) - 1)
/* Idle workers spin for the next call only while calls come back to back.
   A spinning worker takes a core from whatever runs next (the BLAS call
   between two layers of a network, another library's team): on the
   development VM, workers that always spun 200 us made a scikit-learn MLP's
   fit 2.1x slower than one thread, and the next call after a pause 200 us
   slower (the host charges the spin). But in a loop of calls a sleeping
   worker costs a wake-up each time (a 1 MB relu: 18 us asleep, 7.5 us with
   the worker spinning). So a call that starts within ``fr_pool_spin_ns`` of
   the previous large call's end is "hot": the workers spin for that long
   after it; otherwise they go to sleep at once. Settable for measurements
   (_engine.thresholds; 0: never spin). */
static int64_t fr_pool_spin_ns = 50000;
static int64_t fr_pool_spin_until = 0;       /* atomic: workers spin until then */
static int64_t fr_pool_last_end = 0;         /* atomic: the last large call's end */

typedef void (*fr_chunk_fn)(void *ctx, npy_intp start, npy_intp stop);

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int sleepers;
    int started;                 /* workers created in this process */
    unsigned gen;                /* atomic: the current job's generation */
    int ranges;                  /* atomic: threads (ranges) of the current job */
    uint64_t range[FR_POOL_MAX_WORKERS + 1];   /* atomic: see above */
    npy_intp done;               /* atomic: chunks finished in the current job */
    fr_chunk_fn fn;              /* the current job (stable while it runs) */
    void *ctx;
    npy_intp n, chunk;
} fr_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

#define FR_GEN(w) ((unsigned)((w) >> 48))
#define FR_END(w) ((unsigned)(((w) >> 24) & FR_POOL_MAX_CHUNKS))
#define FR_NEXT(w) ((unsigned)((w) & FR_POOL_MAX_CHUNKS))

static inline void fr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Run the chunks of range ``r`` of job ``gen`` that nobody has claimed yet:
   the owner from the front (``next``), a thief from the back (``end``), so
   that a stolen chunk is the one the owner would have reached last. */
static void fr_pool_drain(unsigned gen, int r, int thief)
{
    uint64_t w = __atomic_load_n(&fr_pool.range[r], __ATOMIC_ACQUIRE);
    while (FR_GEN(w) == gen && FR_NEXT(w) < FR_END(w)) {
        uint64_t claimed = thief ? w - ((uint64_t)1 << 24) : w + 1;
        if (__atomic_compare_exchange_n(&fr_pool.range[r], &w, claimed, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            npy_intp k = thief ? FR_END(w) - 1 : FR_NEXT(w);
            npy_intp stop = (k + 1) * fr_pool.chunk;
            fr_pool.fn(fr_pool.ctx, k * fr_pool.chunk, stop < fr_pool.n ? stop : fr_pool.n);
            __atomic_fetch_add(&fr_pool.done, 1, __ATOMIC_RELEASE);
            w = __atomic_load_n(&fr_pool.range[r], __ATOMIC_ACQUIRE);
        }
    }
}

/* Own range first, then steal from the others. */
static void fr_pool_work(unsigned gen, int own, int ranges)
{
    fr_pool_drain(gen, own, 0);
    for (int r = 1; r < ranges; r++)
        fr_pool_drain(gen, (own + r) % ranges, 1);
}

static inline int64_t fr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *fr_pool_worker(void *arg)
{
    int own = 1 + (int)(uintptr_t)arg;          /* range 0 is the caller's */
    unsigned seen = __atomic_load_n(&fr_pool.gen, __ATOMIC_ACQUIRE);
    for (;;) {
        unsigned gen = __atomic_load_n(&fr_pool.gen, __ATOMIC_ACQUIRE);
        int64_t until = __atomic_load_n(&fr_pool_spin_until, __ATOMIC_RELAXED);
        for (unsigned spin = 1; gen == seen && until; spin++) {
            fr_cpu_relax();
            gen = __atomic_load_n(&fr_pool.gen, __ATOMIC_ACQUIRE);
            if (spin % 64 == 0 && fr_now_ns() > until)
                break;
        }
        if (gen == seen) {
            pthread_mutex_lock(&fr_pool.mutex);
            fr_pool.sleepers++;
            while ((gen = __atomic_load_n(&fr_pool.gen, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&fr_pool.wake, &fr_pool.mutex);
            fr_pool.sleepers--;
            pthread_mutex_unlock(&fr_pool.mutex);
        }
        seen = gen;
        int ranges = __atomic_load_n(&fr_pool.ranges, __ATOMIC_ACQUIRE);
        if (own < ranges)
            fr_pool_work(gen & 0xffff, own, ranges);
    }
    return NULL;
}

/* Make sure ``helpers`` workers exist; returns how many do. */
static int fr_pool_grow(int helpers)
{
    if (helpers > FR_POOL_MAX_WORKERS)
        helpers = FR_POOL_MAX_WORKERS;
    while (fr_pool.started < helpers) {
        pthread_t t;
        pthread_attr_t attr;
        int failed;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        failed = pthread_create(&t, &attr, fr_pool_worker,
                                (void *)(uintptr_t)fr_pool.started);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        fr_pool.started++;
    }
    return fr_pool.started;
}

/* Is a large call starting now "hot" (the previous one ended within the
   spin window)? ``*now`` receives the time. */
static inline int fr_pool_hot(int64_t *now)
{
    int64_t window = __atomic_load_n(&fr_pool_spin_ns, __ATOMIC_RELAXED);
    *now = fr_now_ns();
    return window > 0
        && *now - __atomic_load_n(&fr_pool_last_end, __ATOMIC_RELAXED) < window;
}

/* A large call ended (threaded or not). */
static inline void fr_pool_note_end(void)
{
    __atomic_store_n(&fr_pool_last_end, fr_now_ns(), __ATOMIC_RELAXED);
}

/* Run fn over [0, n) in chunks of ``chunk`` elements with up to ``threads``
   threads, the caller included; ``spin_until``: how long the workers stay
   awake afterwards (0: they sleep at once). Returns once every chunk is done. */
static void fr_pool_run(fr_chunk_fn fn, void *ctx, npy_intp n, npy_intp chunk, int threads,
                        int64_t spin_until)
{
    npy_intp chunks = (n + chunk - 1) / chunk;
    int ranges = 1 + fr_pool_grow(threads - 1);
    unsigned gen;
    if (ranges > threads)
        ranges = threads;
    if (ranges > chunks)
        ranges = (int)chunks;
    if (ranges < 2 || chunks > FR_POOL_MAX_CHUNKS) {
        fn(ctx, 0, n);
        return;
    }
    __atomic_store_n(&fr_pool_spin_until, spin_until, __ATOMIC_RELAXED);
    fr_pool.fn = fn;
    fr_pool.ctx = ctx;
    fr_pool.n = n;
    fr_pool.chunk = chunk;
    __atomic_store_n(&fr_pool.done, 0, __ATOMIC_RELAXED);
    gen = __atomic_load_n(&fr_pool.gen, __ATOMIC_RELAXED) + 1;
    for (int r = 0; r < ranges; r++) {
        uint64_t first = chunks * r / ranges, end = chunks * (r + 1) / ranges;
        __atomic_store_n(&fr_pool.range[r], ((uint64_t)(gen & 0xffff) << 48) | (end << 24) | first,
                         __ATOMIC_RELEASE);
    }
    __atomic_store_n(&fr_pool.ranges, ranges, __ATOMIC_RELEASE);
    __atomic_store_n(&fr_pool.gen, gen, __ATOMIC_RELEASE);      /* publishes the job */
    pthread_mutex_lock(&fr_pool.mutex);
    if (fr_pool.sleepers)
        pthread_cond_broadcast(&fr_pool.wake);
    pthread_mutex_unlock(&fr_pool.mutex);
    fr_pool_work(gen & 0xffff, 0, ranges);
    /* Only chunks that a worker has claimed and is running are left. If that
       worker lost its core, give the core up rather than spin against it. */
    for (int spin = 0; __atomic_load_n(&fr_pool.done, __ATOMIC_ACQUIRE) < chunks; spin++) {
        if (spin < 2000)
            fr_cpu_relax();
        else
            sched_yield();
    }
}

/* In a forked child the workers do not exist: start a new team on demand. */
static void fr_pool_after_fork_child(void)
{
    pthread_mutex_init(&fr_pool.mutex, NULL);
    pthread_cond_init(&fr_pool.wake, NULL);
    fr_pool.sleepers = 0;
    fr_pool.started = 0;
}

#endif
