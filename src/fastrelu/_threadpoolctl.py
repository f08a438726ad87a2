"""threadpoolctl's door into a fastrelu built without OpenMP.

With OpenMP, threadpoolctl's limits reach fastrelu through the OpenMP runtime
it links (its default thread count is OpenMP's). A build without OpenMP (no
``omp.h``, as with Apple clang) keeps its default count in ``_engine`` and
exports two C functions for it; this controller lets
``threadpoolctl.threadpool_limits(n)`` and ``threadpool_limits(n,
user_api="openmp")`` set it, since fastrelu's team then stands where OpenMP's
would. Registered at import when threadpoolctl is installed (it is optional).
"""
import threadpoolctl

_GET = "fastrelu_get_default_threads"
_SET = "fastrelu_set_default_threads"


class FastreluController(threadpoolctl.LibController):
    """fastrelu's default thread count, as threadpoolctl sees a library."""

    user_api = "openmp"
    internal_api = "fastrelu"
    filename_prefixes = ("_engine",)

    def get_num_threads(self):
        get = getattr(self.dynlib, _GET, None)   # None: another package's _engine
        return get() if get is not None else None

    def set_num_threads(self, num_threads):
        set_ = getattr(self.dynlib, _SET, None)
        if set_ is not None:
            set_(num_threads)

    def get_version(self):
        from fastrelu import __version__
        return __version__ if getattr(self.dynlib, _GET, None) is not None else None


threadpoolctl.register(FastreluController)
