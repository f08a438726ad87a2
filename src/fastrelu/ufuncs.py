"""fastrelu's operations as NumPy ufuncs, one per operation of the registry.

They take part in NumPy's protocols: broadcasting, ``out=``, ``where=``,
casting, and ``__array_ufunc__`` dispatch to containers such as dask arrays,
pandas objects and xarray DataArrays. The plain functions in ``fastrelu`` are
faster on small ndarrays and stricter about dtypes; these follow NumPy's ufunc
rules (for example, inputs are cast to a supported loop when it is safe). A
scalar parameter is one more input: ``ufuncs.leaky_relu(x, 0.1)``,
``ufuncs.threshold(x, 1.0, 0.0)``.

Examples
--------
>>> import numpy as np
>>> from fastrelu import ufuncs
>>> ufuncs.relu(np.array([-1.0, 2.0]))
array([0., 2.])
"""
from fastrelu._ufuncs import UFUNCS

globals().update(UFUNCS)
__all__ = sorted(UFUNCS)
