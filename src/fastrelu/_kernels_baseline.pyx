# The kernels of _kernels.pxi compiled for the "baseline" instruction-set level;
# setup.py sets the compiler flags. _core loads this module only on a CPU that
# supports it.
include "_kernels.pxi"
