"""Thread control, the output pool, and build information."""
import contextlib
import operator
import sys

import numpy as np

from fastrelu import _engine, _memory
from fastrelu._version import __version__


def get_num_threads():
    """Number of threads a large call uses.

    The count of the calling thread's `num_threads` block, else the value set
    with `set_num_threads`, else OpenMP's current maximum, which follows
    ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits``; never more
    than the CPUs available to the process (its affinity mask and cgroup CPU
    quota) or ``OMP_THREAD_LIMIT``, since more threads than cores only slow a
    memory-bound call down. It applies to every operation and path (functions, ufuncs, Cython API).
    Calls below 256 KiB of output run on the calling thread, and so do calls
    below 4 MiB that do not follow another large call within 50 us (waking a
    thread and sharing the cores with the BLAS next door cost more than they
    save there); a call uses at most one thread per 128 KiB,
    and a call made while another one holds the thread team runs on its own
    thread. Idle workers spin only in loops of calls, so they do not take a
    core from the next library's threads.

    Returns
    -------
    int
        The number of threads, at least 1.

    Examples
    --------
    >>> import fastrelu
    >>> fastrelu.get_num_threads() >= 1
    True
    """
    return _engine.get_num_threads()


def set_num_threads(n):
    """Set the number of threads for large calls; returns the previous setting.

    Parameters
    ----------
    n : int or None
        A positive number of threads, or None to follow OpenMP again
        (``OMP_NUM_THREADS``, ``threadpoolctl``).

    Returns
    -------
    int or None
        The previous setting (None if it followed OpenMP).

    Raises
    ------
    TypeError
        ``n`` is not an int or None (a bool is refused).
    ValueError
        ``n`` is less than 1.

    Notes
    -----
    The setting is process-wide (`num_threads` sets one for the calling thread
    only). A larger ``n`` than the CPUs available to the process is accepted
    and used as that many: `get_num_threads` reports the count calls really
    use. Results are bit-identical for every thread count.

    Examples
    --------
    >>> import fastrelu
    >>> previous = fastrelu.set_num_threads(1)
    >>> fastrelu.get_num_threads()
    1
    >>> fastrelu.set_num_threads(previous)
    1
    """
    n = _thread_count(n, "set_num_threads")
    return _engine.swap_threads(0 if n is None else n) or None


def _thread_count(n, func):
    """``n`` validated: a positive int, or None."""
    if n is None:
        return None
    if isinstance(n, bool):
        raise TypeError(f"{func}() takes an int or None, not bool")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"{func}(): n must be >= 1 or None, got {n}")
    return min(n, 1 << 30)


@contextlib.contextmanager
def num_threads(n):
    """Context manager: use ``n`` threads (or None: OpenMP's) inside the block.

    The setting applies to the calling thread only (as threadpoolctl's limits
    do for their libraries), so blocks in several Python threads do not
    interfere; the previous setting of the thread is restored on exit.

    Parameters
    ----------
    n : int or None
        As for `set_num_threads`.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> with fastrelu.num_threads(1):
    ...     fastrelu.get_num_threads()
    1
    """
    n = _thread_count(n, "num_threads")
    previous = _engine.swap_local_threads(-1 if n is None else n)
    try:
        yield
    finally:
        _engine.swap_local_threads(previous)


def _kernel_lines(info):
    """show_config's lines on the kernels: x86-64 has one module per
    instruction-set level, picked at import; other architectures one, which the
    compiler vectorizes for the architecture's baseline (NEON on aarch64)."""
    if info["machine"].lower() in ("x86_64", "amd64", "i386", "i686"):
        return [f"  kernel path       {info['isa']} (flags: "
                f"{info['isa_cflags'] or 'default x86-64'})",
                f"  CPU supports      {', '.join(info['isa_levels_supported'])}",
                "  override          FASTRELU_CPU=baseline|avx2|avx512",
                f"  streaming stores  from {info['stream_min_bytes']} bytes read (all inputs)"]
    simd = "NEON, " if info["machine"].lower() in ("aarch64", "arm64") else ""
    return [f"  kernel path       one module for {info['machine']} ({simd}vectorized by "
            f"the compiler; flags: {info['isa_cflags'] or 'the default'})",
            "  streaming stores  none (plain stores on this architecture)"]


def show_config(file=None):
    """Print the build and runtime configuration: versions, compiler, the
    instruction-set level in use (and the ``FASTRELU_CPU`` override), the
    thread count, the output sizes above which calls use threads and
    streaming stores, and the output pool's limit.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).

    Examples
    --------
    >>> import fastrelu
    >>> fastrelu.show_config()  # doctest: +SKIP
    """
    info = _engine.build_info()
    pool = _memory.stats()
    lines = [
        f"fastrelu {__version__}",
        f"  python            {sys.version.split()[0]}",
        f"  numpy             {np.__version__}",
        f"  compiler          {info['compiler']}",
        *_kernel_lines(info),
        f"  threads           {info['num_threads']} (fastrelu's team, at most "
        f"{info['thread_cap']}: the CPUs available; parallel above "
        f"{info['parallel_min_bytes']} bytes)",
        "  default count     " + ("OpenMP's (OMP_NUM_THREADS, threadpoolctl)" if info["openmp"]
                                 else "built without OpenMP: OMP_NUM_THREADS at import, "
                                      "threadpoolctl"),
        f"  output pool       limit {pool['limit_bytes']} bytes (default "
        f"{_memory.default_limit()}; FASTRELU_POOL_LIMIT), for outputs of at least "
        f"{pool['min_bytes']} bytes; {pool['cached_bytes']} bytes cached now",
    ]
    print("\n".join(lines), file=file)


# --- the output pool ----------------------------------------------------------------

def set_pool_limit(nbytes):
    """Set how many bytes of freed outputs the pool keeps cached; returns the
    previous limit.

    fastrelu's functions allocate their large outputs (at least 1 MiB) from a
    pool: when such an array is freed, its buffer is kept for the next output
    of a size that fits, instead of going back to the OS, which would fault
    and zero every page of the next one again (see :doc:`performance`).

    Parameters
    ----------
    nbytes : int or None
        The most bytes of free buffers the pool keeps. ``0`` turns caching
        off: outputs come from NumPy's allocator again and freed pool
        buffers go straight back to the OS. ``None`` restores the default
        (``FASTRELU_POOL_LIMIT``, else an eighth of the memory available to
        the process, at most 1 GiB). Cached buffers beyond a lower limit are
        released now.

    Returns
    -------
    int
        The previous limit in bytes.

    Raises
    ------
    TypeError
        ``nbytes`` is not an int or None (a bool or a float is refused).
    ValueError
        ``nbytes`` is negative. The limit is unchanged after an error.

    Examples
    --------
    >>> import fastrelu
    >>> previous = fastrelu.set_pool_limit(256 * 2**20)
    >>> fastrelu.get_pool_limit()
    268435456
    >>> fastrelu.set_pool_limit(previous)
    268435456
    """
    if nbytes is None:
        nbytes = _memory.limit_from_environment()
    elif isinstance(nbytes, bool) or not hasattr(type(nbytes), "__index__"):
        raise TypeError(f"set_pool_limit() takes an int number of bytes or None, "
                        f"not {type(nbytes).__name__}")
    nbytes = operator.index(nbytes)
    if nbytes < 0:
        raise ValueError(f"set_pool_limit(): nbytes must be >= 0, got {nbytes}")
    return _memory.set_limit(min(nbytes, (1 << 63) - 1))


def get_pool_limit():
    """The most bytes of freed outputs the pool keeps cached (see
    `set_pool_limit`); ``0`` when the pool is off.

    Examples
    --------
    >>> import fastrelu
    >>> fastrelu.get_pool_limit() >= 0
    True
    """
    return _memory.get_limit()


def free_pool():
    """Return every cached buffer to the OS now; returns the bytes released.

    Arrays that are alive keep their memory (it returns to the pool, or to
    the OS if it no longer fits, when they are freed). The limit is unchanged.

    Examples
    --------
    >>> import fastrelu
    >>> released = fastrelu.free_pool()
    >>> fastrelu.pool_stats()["cached_bytes"]
    0
    """
    return _memory.release()


def pool_stats():
    """The output pool's counters.

    Returns
    -------
    dict
        ``cached_bytes`` (free buffers held now, never above the limit),
        ``limit_bytes``, ``hits`` and ``misses`` (outputs served from the
        cache, or from a fresh mapping, since start or fork),
        ``cached_buffers``, ``live_buffers`` (pool arrays alive now),
        ``mapped_bytes`` (all of the pool's mappings, live and cached), and
        ``min_bytes`` (the smallest output that comes from the pool).

    Examples
    --------
    >>> import fastrelu
    >>> sorted(fastrelu.pool_stats())[:4]
    ['cached_buffers', 'cached_bytes', 'hits', 'limit_bytes']
    """
    return _memory.stats()
