# fastrelu.kernels has no Python-level names: its API is the C one in kernels.pxd.
