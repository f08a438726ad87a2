# The loops of _loops.pxi compiled for the "avx2" instruction-set level;
# setup.py sets the compiler flags. _engine loads this module only on a CPU
# that supports it.
include "_loops.pxi"
