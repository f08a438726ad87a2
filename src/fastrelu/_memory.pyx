"""The output pool: large outputs that fastrelu allocates come from a NumPy
memory handler (NEP 49, ``_memory.h``) that caches freed buffers.

The arrays are ordinary NumPy arrays that own their data (``OWNDATA``,
resizable, picklable): NumPy records the handler in each array and frees the
buffer through it, which returns it to the pool. Only the allocation of
fastrelu's own outputs runs under the handler (it is set around that one
call), so nothing else in the process is affected.
"""
cimport numpy as cnp
from numpy cimport ndarray
from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint64_t

import atexit
import os
import re
import warnings

cnp.import_array()


cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void *ctx
    ctypedef struct PyDataMem_Handler:
        pass
    object PyDataMem_SetHandler(object handler)
    object new_like "PyArray_NewLikeArray" (ndarray prototype, cnp.NPY_ORDER order,
                                            void *descr, int subok)

cdef extern from "_memory.h":
    ctypedef struct fr_mem_stats_t:
        size_t cached, limit
        uint64_t hits, misses, buffers, live, mapped
    size_t fr_mem_min_bytes
    size_t fr_mem_set_limit(size_t limit) noexcept nogil
    size_t fr_mem_release() noexcept nogil
    fr_mem_stats_t fr_mem_stats() noexcept nogil
    int fr_mem_register_atfork() noexcept nogil
    void *fr_mem_malloc(void *ctx, size_t size) noexcept nogil
    void *fr_mem_calloc(void *ctx, size_t nelem, size_t elsize) noexcept nogil
    void *fr_mem_realloc(void *ctx, void *p, size_t size) noexcept nogil
    void fr_mem_free(void *ctx, void *p, size_t size) noexcept nogil
    int fr_huge "fr_mem.huge"

cdef extern from *:
    """
    static PyDataMem_Handler fr_mem_handler = {
        "fastrelu_pool", 1,
        {NULL, fr_mem_malloc, fr_mem_calloc, fr_mem_realloc, fr_mem_free}
    };
    static size_t fr_pool_on = 0;   /* the limit is not 0 (read without the lock) */
    """
    PyDataMem_Handler fr_mem_handler
    size_t fr_pool_on

cdef object HANDLER = PyCapsule_New(&fr_mem_handler, "mem_handler", NULL)

if fr_mem_register_atfork() != 0:
    raise ImportError("fastrelu: pthread_atfork failed")


cdef object _allocate(ndarray prototype, cnp.dtype descr):
    """``PyArray_NewLikeArray(prototype, descr)`` (descr None: the prototype's
    dtype), under the pool's handler when the output is large enough and the
    pool is on."""
    cdef size_t itemsize = <size_t>(prototype.itemsize if descr is None else descr.itemsize)
    cdef void *d = NULL
    cdef object previous
    if descr is not None:
        Py_INCREF(descr)              # PyArray_NewLikeArray steals it
        d = <void *>descr
    if fr_pool_on == 0 or <size_t>cnp.PyArray_SIZE(prototype) * itemsize < fr_mem_min_bytes:
        return new_like(prototype, cnp.NPY_KEEPORDER, d, 0)
    previous = PyDataMem_SetHandler(HANDLER)
    try:
        return new_like(prototype, cnp.NPY_KEEPORDER, d, 0)
    finally:
        PyDataMem_SetHandler(previous)


cdef object new_output(ndarray prototype):
    """A new array like ``prototype`` (its dtype, shape and element order),
    from the pool when it is large enough and the pool is on."""
    return _allocate(prototype, None)


def empty_like(ndarray prototype, dtype):
    """``np.empty_like(prototype, dtype=dtype, subok=False)``, from the pool
    when it is large enough and the pool is on."""
    return _allocate(prototype, cnp.dtype(dtype))


def set_limit(size_t nbytes):
    """Set the cache limit in bytes (evicting what no longer fits); returns
    the previous limit."""
    global fr_pool_on
    previous = fr_mem_set_limit(nbytes)
    fr_pool_on = nbytes
    return previous


def get_limit():
    return fr_mem_stats().limit


def release():
    """Unmap every cached buffer now; returns the bytes released."""
    return fr_mem_release()


def stats():
    cdef fr_mem_stats_t s = fr_mem_stats()
    return {"cached_bytes": s.cached, "limit_bytes": s.limit, "hits": s.hits,
            "misses": s.misses, "cached_buffers": s.buffers, "live_buffers": s.live,
            "mapped_bytes": s.mapped, "min_bytes": fr_mem_min_bytes}


def set_huge_pages(bint on):
    """Ask for transparent huge pages on fresh mappings (the default, see
    docs/performance.rst); returns the previous setting."""
    global fr_huge
    previous = bool(fr_huge)
    fr_huge = on
    return previous


def set_min_bytes(size_t nbytes):
    """The smallest output taken from the pool; returns the previous value
    (for measurements and tests)."""
    global fr_mem_min_bytes
    previous = fr_mem_min_bytes
    fr_mem_min_bytes = nbytes
    return previous


#: The default limit: an eighth of the memory available to the process (its
#: cgroup limit or the physical memory), at most 1 GiB -- room for the outputs
#: of a training step's largest layers (a 1e8 float32 output is 400 MB) while
#: never holding more than a small share of the machine idle.
DEFAULT_CAP = 1 << 30
DEFAULT_SHARE = 8
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def available_memory():
    """Bytes of memory available to the process: the physical memory, or
    the cgroup's limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_limit():
    return min(DEFAULT_CAP, available_memory() // DEFAULT_SHARE)


def parse_size(text):
    """Bytes from ``"512M"``, ``"2G"``, ``"1048576"`` (K, M, G, T: powers of
    1024; an optional B or iB). ValueError if it is not such a size."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise ValueError(f"not a size in bytes: {text!r} (e.g. 536870912, 512M, 2G)")
    return int(match[1]) * _SUFFIXES[match[2]]


def limit_from_environment():
    """``FASTRELU_POOL_LIMIT`` if set and valid (a RuntimeWarning and the
    default otherwise), else the default."""
    text = os.environ.get("FASTRELU_POOL_LIMIT")
    if text is None or text.strip() == "":
        return default_limit()
    try:
        return parse_size(text)
    except ValueError as e:
        warnings.warn(f"FASTRELU_POOL_LIMIT ignored: {e}", RuntimeWarning, stacklevel=2)
        return default_limit()


set_limit(limit_from_environment())


def _at_exit():
    # buffers freed after this go straight back to the OS
    set_limit(0)


atexit.register(_at_exit)
