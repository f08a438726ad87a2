"""fastrelu's kernels as NumPy ufuncs.

They take part in NumPy's protocols: broadcasting, ``out=``, ``where=``,
casting, and ``__array_ufunc__`` dispatch to containers such as dask arrays,
pandas objects and xarray DataArrays. The plain functions in ``fastrelu`` are
faster on small ndarrays and stricter about dtypes; these follow NumPy's ufunc
rules (for example, inputs are cast to a supported loop when it is safe).

Examples
--------
>>> import numpy as np
>>> from fastrelu import ufuncs
>>> ufuncs.relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""
from fastrelu._core import ufunc_leaky_relu as leaky_relu
from fastrelu._core import ufunc_leaky_relu_backward as leaky_relu_backward
from fastrelu._core import ufunc_relu as relu
from fastrelu._core import ufunc_relu6 as relu6
from fastrelu._core import ufunc_relu6_backward as relu6_backward
from fastrelu._core import ufunc_relu_backward as relu_backward
from fastrelu._core import ufunc_relu_grad as relu_grad

__all__ = ["leaky_relu", "leaky_relu_backward", "relu", "relu6", "relu6_backward",
           "relu_backward", "relu_grad"]
