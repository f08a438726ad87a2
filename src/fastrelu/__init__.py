"""fastrelu: the fastest, most trustworthy ReLU for CPU arrays.

ReLU ``f(x) = 0 if x <= 0 else x``, its gradient and the fused backward, for
NumPy arrays of every float and integer dtype, with SIMD kernels picked for the
CPU at import and threads for large arrays.
"""
from fastrelu._config import (get_num_threads, num_threads, set_num_threads,
                              show_config)
from fastrelu._bench import bench
from fastrelu._core import (leaky_relu, leaky_relu_, leaky_relu_backward, relu, relu6,
                            relu6_, relu6_backward, relu_, relu_backward, relu_grad)
from fastrelu._version import __version__

__all__ = [
    "__version__",
    "bench",
    "get_num_threads",
    "leaky_relu",
    "leaky_relu_",
    "leaky_relu_backward",
    "num_threads",
    "relu",
    "relu6",
    "relu6_",
    "relu6_backward",
    "relu_",
    "relu_backward",
    "relu_grad",
    "set_num_threads",
    "show_config",
]
