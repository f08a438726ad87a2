# Type stubs for the compiled module fastrelu._ufuncs.
import numpy as np

UFUNCS: dict[str, np.ufunc]
