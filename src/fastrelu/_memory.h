/* fastrelu's output pool: a NumPy memory handler (NEP 49) that caches large
 * freed buffers instead of handing them back to the OS.
 *
 * Why: glibc serves an allocation above its mmap threshold (at most 32 MiB)
 * with a fresh mapping, and the kernel faults and zeroes every page of it on
 * first touch before fastrelu writes it again: 3.5 to 4.5 ms per 40 MB on the
 * development machine, three quarters of a 1e7 float32 relu. A buffer taken
 * from the pool is already faulted in.
 *
 * Every block this handler returns has a 64-byte header just before the data
 * (so that realloc, which NumPy calls without the old size, knows it):
 *     FR_BLOCK_MAPPED  an mmap of its own, cached on free while the cache
 *                      stays within the limit (least recently freed evicted);
 *     FR_BLOCK_HEAP    a malloc'd block, for the small sizes that a resize
 *                      can shrink a pooled array to.
 * NumPy frees a block through the handler recorded in the array, from
 * whichever thread drops the last reference, so every entry point locks.
 */
#ifndef FASTRELU_MEMORY_H
#define FASTRELU_MEMORY_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FR_MEM_HEADER 64
#define FR_MEM_MAGIC 0x66726d656d6f7279ull  /* "frmemory" */
#define FR_MEM_SLOTS 64                      /* cached buffers at most */
#define FR_MEM_HUGE ((size_t)2 << 20)        /* the x86-64/aarch64 huge page */
#define FR_BLOCK_MAPPED 1
#define FR_BLOCK_HEAP 2

typedef struct {
    uint64_t magic;
    int kind;
    size_t capacity;      /* usable bytes after the header */
    void *base;           /* FR_BLOCK_MAPPED: the mapping (base .. base + length) */
    size_t length;
} fr_block_t;

typedef struct {
    fr_block_t *block;
    uint64_t freed;       /* the clock when it was cached: evict the oldest */
} fr_slot_t;

static struct {
    pthread_mutex_t mutex;
    fr_slot_t slot[FR_MEM_SLOTS];
    int count;
    size_t cached, limit;
    uint64_t clock, hits, misses, mapped_bytes, live;
    int huge;             /* madvise(MADV_HUGEPAGE) on fresh mappings */
} fr_mem = {PTHREAD_MUTEX_INITIALIZER};

static inline fr_block_t *fr_block_of(void *p)
{
    return (fr_block_t *)((char *)p - FR_MEM_HEADER);
}
static inline void *fr_data_of(fr_block_t *b)
{
    return (char *)b + FR_MEM_HEADER;
}

static void fr_unmap(fr_block_t *b)
{
    munmap(b->base, b->length);
}

/* A fresh mapping for ``size`` bytes of data, whose start is aligned to a
   huge page so that the kernel can back it with huge pages. */
static fr_block_t *fr_map(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t need, length, lead, trail;
    char *p, *start;
    if (size > SIZE_MAX - FR_MEM_HEADER - 2 * FR_MEM_HUGE)
        return NULL;
    need = (size + FR_MEM_HEADER + page - 1) / page * page;
    length = need + FR_MEM_HUGE;
    p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    start = (char *)(((uintptr_t)p + FR_MEM_HUGE - 1) & ~(uintptr_t)(FR_MEM_HUGE - 1));
    lead = start - p;
    trail = length - lead - need;
    if (lead)
        munmap(p, lead);
    if (trail)
        munmap(start + need, trail);
#ifdef MADV_HUGEPAGE
    if (fr_mem.huge)
        madvise(start, need, MADV_HUGEPAGE);
#endif
    fr_block_t *b = (fr_block_t *)start;
    b->magic = FR_MEM_MAGIC;
    b->kind = FR_BLOCK_MAPPED;
    b->capacity = need - FR_MEM_HEADER;
    b->base = start;
    b->length = need;
    return b;
}

/* Drop cached buffers, oldest first, until ``room`` more bytes fit under
   the limit and a slot is free. Called with the mutex held; returns the
   blocks to unmap in ``out`` (unmapped after the unlock). */
static int fr_evict(size_t room, fr_block_t **out)
{
    int n = 0;
    while (fr_mem.count && (fr_mem.cached + room > fr_mem.limit
                            || fr_mem.count == FR_MEM_SLOTS)) {
        int oldest = 0;
        for (int i = 1; i < fr_mem.count; i++)
            if (fr_mem.slot[i].freed < fr_mem.slot[oldest].freed)
                oldest = i;
        out[n++] = fr_mem.slot[oldest].block;
        fr_mem.cached -= fr_mem.slot[oldest].block->capacity;
        fr_mem.slot[oldest] = fr_mem.slot[--fr_mem.count];
    }
    return n;
}

/* A cached buffer that fits ``size`` without wasting more than an eighth
   (the best fit), or NULL. Called with the mutex held. */
static fr_block_t *fr_take(size_t size)
{
    int best = -1;
    size_t slack = size / 8 > FR_MEM_HUGE ? size / 8 : FR_MEM_HUGE;
    for (int i = 0; i < fr_mem.count; i++) {
        size_t c = fr_mem.slot[i].block->capacity;
        if (c >= size && c - size <= slack
                && (best < 0 || c < fr_mem.slot[best].block->capacity))
            best = i;
    }
    if (best < 0)
        return NULL;
    fr_block_t *b = fr_mem.slot[best].block;
    fr_mem.cached -= b->capacity;
    fr_mem.slot[best] = fr_mem.slot[--fr_mem.count];
    return b;
}

/* A block of at least ``size`` bytes: a cached one, else a fresh mapping
   (when the OS refuses, the cache is emptied and the mapping tried again).
   ``*fresh`` tells whether its pages are still the OS's zeroes. */
static void *fr_mem_get(size_t size, int *fresh)
{
    fr_block_t *b, *drop[FR_MEM_SLOTS];
    int n;
    pthread_mutex_lock(&fr_mem.mutex);
    b = fr_take(size);
    if (b) {
        fr_mem.hits++;
        fr_mem.live++;
        pthread_mutex_unlock(&fr_mem.mutex);
        *fresh = 0;
        return fr_data_of(b);
    }
    fr_mem.misses++;
    pthread_mutex_unlock(&fr_mem.mutex);
    *fresh = 1;
    b = fr_map(size);
    if (b == NULL) {
        pthread_mutex_lock(&fr_mem.mutex);
        size_t limit = fr_mem.limit;
        fr_mem.limit = 0;
        n = fr_evict(0, drop);
        fr_mem.limit = limit;
        for (int i = 0; i < n; i++)
            fr_mem.mapped_bytes -= drop[i]->length;
        pthread_mutex_unlock(&fr_mem.mutex);
        if (n == 0)
            return NULL;
        while (n)
            fr_unmap(drop[--n]);
        b = fr_map(size);
        if (b == NULL)
            return NULL;
    }
    pthread_mutex_lock(&fr_mem.mutex);
    fr_mem.live++;
    fr_mem.mapped_bytes += b->length;
    pthread_mutex_unlock(&fr_mem.mutex);
    return fr_data_of(b);
}

/* Give a mapped block back: cached if it fits under the limit (older
   buffers evicted to make room), else unmapped. */
static void fr_mem_put(fr_block_t *b)
{
    fr_block_t *drop[FR_MEM_SLOTS + 1];
    int n = 0;
    pthread_mutex_lock(&fr_mem.mutex);
    fr_mem.live--;
    if (b->capacity <= fr_mem.limit) {
        n = fr_evict(b->capacity, drop);
        fr_mem.slot[fr_mem.count].block = b;
        fr_mem.slot[fr_mem.count].freed = ++fr_mem.clock;
        fr_mem.count++;
        fr_mem.cached += b->capacity;
    } else {
        drop[n++] = b;
    }
    for (int i = 0; i < n; i++)
        fr_mem.mapped_bytes -= drop[i]->length;
    pthread_mutex_unlock(&fr_mem.mutex);
    while (n)
        fr_unmap(drop[--n]);
}

/* --- the PyDataMem_Handler entry points ------------------------------------ */

static void *fr_heap_block(size_t size)
{
    fr_block_t *b;
    if (size > SIZE_MAX - FR_MEM_HEADER)
        return NULL;
    b = malloc(size + FR_MEM_HEADER);
    if (b == NULL)
        return NULL;
    b->magic = FR_MEM_MAGIC;
    b->kind = FR_BLOCK_HEAP;
    b->capacity = size;
    b->base = b;
    b->length = 0;
    return fr_data_of(b);
}

/* Sizes below this come from malloc (a pooled array resized to a small one). */
static size_t fr_mem_min_bytes = (size_t)1 << 20;

static void *fr_mem_malloc(void *ctx, size_t size)
{
    int fresh;
    (void)ctx;
    if (size < fr_mem_min_bytes)
        return fr_heap_block(size);
    return fr_mem_get(size, &fresh);
}

static void *fr_mem_calloc(void *ctx, size_t nelem, size_t elsize)
{
    int fresh;
    void *p;
    size_t size;
    (void)ctx;
    if (elsize && nelem > SIZE_MAX / elsize)
        return NULL;
    size = nelem * elsize;
    if (size < fr_mem_min_bytes) {
        p = fr_heap_block(size);
        if (p)
            memset(p, 0, size);
        return p;
    }
    p = fr_mem_get(size, &fresh);
    if (p && !fresh)
        memset(p, 0, size);
    return p;
}

static void fr_mem_free(void *ctx, void *p, size_t size)
{
    fr_block_t *b;
    (void)ctx;
    (void)size;
    if (p == NULL)
        return;
    b = fr_block_of(p);
    if (b->kind == FR_BLOCK_HEAP)
        free(b);
    else
        fr_mem_put(b);
}

static void *fr_mem_realloc(void *ctx, void *p, size_t size)
{
    fr_block_t *b;
    void *q;
    if (p == NULL)
        return fr_mem_malloc(ctx, size);
    b = fr_block_of(p);
    /* shrinking a mapped block by less than half keeps it where it is */
    if (b->kind == FR_BLOCK_MAPPED && size <= b->capacity && size >= b->capacity / 2)
        return p;
    q = fr_mem_malloc(ctx, size);
    if (q == NULL)
        return NULL;                 /* NumPy keeps (and later frees) p */
    memcpy(q, p, size < b->capacity ? size : b->capacity);
    fr_mem_free(ctx, p, b->capacity);
    return q;
}

/* --- control ----------------------------------------------------------------- */

/* Set the limit, evicting what no longer fits; returns the previous one. */
static size_t fr_mem_set_limit(size_t limit)
{
    fr_block_t *drop[FR_MEM_SLOTS];
    int n;
    size_t previous;
    pthread_mutex_lock(&fr_mem.mutex);
    previous = fr_mem.limit;
    fr_mem.limit = limit;
    n = fr_evict(0, drop);
    for (int i = 0; i < n; i++)
        fr_mem.mapped_bytes -= drop[i]->length;
    pthread_mutex_unlock(&fr_mem.mutex);
    while (n)
        fr_unmap(drop[--n]);
    return previous;
}

/* Return every cached buffer to the OS; returns the bytes released. */
static size_t fr_mem_release(void)
{
    size_t limit, released;
    pthread_mutex_lock(&fr_mem.mutex);
    released = fr_mem.cached;
    limit = fr_mem.limit;
    pthread_mutex_unlock(&fr_mem.mutex);
    fr_mem_set_limit(0);
    fr_mem_set_limit(limit);
    return released;
}

typedef struct {
    size_t cached, limit;
    uint64_t hits, misses, buffers, live, mapped;
} fr_mem_stats_t;

static fr_mem_stats_t fr_mem_stats(void)
{
    fr_mem_stats_t s;
    pthread_mutex_lock(&fr_mem.mutex);
    s.cached = fr_mem.cached;
    s.limit = fr_mem.limit;
    s.hits = fr_mem.hits;
    s.misses = fr_mem.misses;
    s.buffers = fr_mem.count;
    s.live = fr_mem.live;
    s.mapped = fr_mem.mapped_bytes;
    pthread_mutex_unlock(&fr_mem.mutex);
    return s;
}

/* fork: the child starts with an empty cache. Its live arrays are its own
   copies of the parent's pages and come back to its own pool when freed;
   the cached buffers are unmapped (the lock is held across fork, so the
   list is consistent). */
static void fr_mem_prepare(void) { pthread_mutex_lock(&fr_mem.mutex); }
static void fr_mem_parent(void) { pthread_mutex_unlock(&fr_mem.mutex); }
static void fr_mem_child(void)
{
    for (int i = 0; i < fr_mem.count; i++) {
        fr_mem.mapped_bytes -= fr_mem.slot[i].block->length;
        fr_unmap(fr_mem.slot[i].block);
    }
    fr_mem.count = 0;
    fr_mem.cached = 0;
    fr_mem.hits = fr_mem.misses = 0;
    pthread_mutex_init(&fr_mem.mutex, NULL);
}
static int fr_mem_register_atfork(void)
{
    return pthread_atfork(fr_mem_prepare, fr_mem_parent, fr_mem_child);
}

#endif
