"""Thread control and build information."""
import contextlib
import operator
import sys

import numpy as np

from fastrelu import _engine
from fastrelu._version import __version__


def get_num_threads():
    """Number of threads a large call uses.

    The count of the calling thread's `num_threads` block, else the value set
    with `set_num_threads`, else OpenMP's current maximum, which follows
    ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits``; never more
    than the CPUs available to the process (its affinity mask and cgroup CPU
    quota) or ``OMP_THREAD_LIMIT``, since more threads than cores only slow a
    memory-bound call down. It applies to every operation and path (functions, ufuncs, Cython API).
    Calls below 256 KiB of output always run on the calling thread, a larger
    call uses at most one thread per 128 KiB, and a call made while another
    one holds the thread team runs on its own thread.

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


def show_config(file=None):
    """Print the build and runtime configuration: versions, compiler, the
    instruction-set level in use (and the ``FASTRELU_CPU`` override), the
    thread count, and the output sizes above which calls use threads and
    streaming stores.

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
    lines = [
        f"fastrelu {__version__}",
        f"  python            {sys.version.split()[0]}",
        f"  numpy             {np.__version__}",
        f"  compiler          {info['compiler']}",
        f"  kernel path       {info['isa']} (flags: {info['isa_cflags'] or 'default x86-64'})",
        f"  CPU supports      {', '.join(info['isa_levels_supported'])}",
        "  override          FASTRELU_CPU=baseline|avx2|avx512",
        f"  threads           {info['num_threads']} (fastrelu's pool, at most "
        f"{info['thread_cap']}: the CPUs available; parallel above "
        f"{info['parallel_min_bytes']} bytes)",
        f"  streaming stores  above {info['stream_min_bytes']} bytes",
    ]
    print("\n".join(lines), file=file)
