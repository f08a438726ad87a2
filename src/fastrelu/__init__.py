"""fastrelu: the fastest, most trustworthy ReLU for CPU arrays.

The ReLU family -- ``relu``, its gradient and fused backward, ``relu6``,
``leaky_relu``, ``threshold``, each with its in-place and backward twins, and
ReLU fused with its neighbours (``add_relu``, ``bias_relu`` and its backward,
the packed 1-bit mask, dead-unit counts) --
for NumPy arrays of every float and integer dtype, with SIMD loops picked for
the CPU at import and threads for large arrays. The operations are rows of a
registry (``fastrelu._registry``); each is also a NumPy ufunc
(``fastrelu.ufuncs``) and a Cython function (``fastrelu.kernels``).
"""
from fastrelu._config import (free_pool, get_num_threads, get_pool_limit, num_threads,
                              pool_stats, set_num_threads, set_pool_limit, show_config)
from fastrelu._bench import bench
from fastrelu._functions import *  # noqa: F403 (the registry's functions)
from fastrelu._functions import __all__ as _FUNCTIONS
from fastrelu._fused import *  # noqa: F403 (the registry's fused operations)
from fastrelu._fused import __all__ as _FUSED
from fastrelu._version import __version__
# Imported here, not only on demand: NumPy pickles a ufunc by reference to the
# module that holds it by name (pickle.whichmodule), so the ufuncs that the
# functions hand to dask, pandas and xarray must be found in fastrelu.ufuncs
# after a plain ``import fastrelu`` (dask.distributed workers unpickle them).
from fastrelu import ufuncs
from fastrelu import _engine

if not _engine.OPENMP:      # threadpoolctl's limits reach a build without OpenMP here
    try:
        from fastrelu import _threadpoolctl  # noqa: F401
    except (ImportError, AttributeError):   # threadpoolctl absent, or older than register()
        pass

__all__ = sorted(["__version__", "bench", "free_pool", "get_num_threads", "get_pool_limit",
                  "num_threads", "pool_stats", "set_num_threads", "set_pool_limit",
                  "show_config", *_FUNCTIONS, *_FUSED])
