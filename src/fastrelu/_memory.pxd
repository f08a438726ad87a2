# The output pool's C-level interface, for the public functions' fast path.
from numpy cimport ndarray

cdef object new_output(ndarray prototype)
