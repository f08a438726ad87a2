"""Build the compiled parts of fastrelu.

_core is compiled for the baseline of the target (x86-64 = SSE2) and picks one
kernel module at import time. On x86-64 the kernels of _kernels.pxi are compiled
three times, once per instruction-set level, so one wheel runs on every x86-64
CPU at the best speed it offers. Never add -march=native or -ffast-math here.

FASTRELU_DEBUG=1 turns Cython's bounds and wraparound checks back on.
FASTRELU_EXTRA_CFLAGS / FASTRELU_EXTRA_LDFLAGS add flags (sanitizer builds).
"""
import os
import platform

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTRELU_DEBUG", "") not in ("", "0")
EXTRA_CFLAGS = os.environ.get("FASTRELU_EXTRA_CFLAGS", "").split()
EXTRA_LDFLAGS = os.environ.get("FASTRELU_EXTRA_LDFLAGS", "").split()
CFLAGS = ["-O3", "-fno-strict-aliasing", *EXTRA_CFLAGS]
if DEBUG:
    CFLAGS += ["-UNDEBUG"]

# level -> flags. The AVX-512 level needs BW for the 8/16-bit kernels.
ISA_FLAGS = {"baseline": []}
if platform.machine().lower() in ("x86_64", "amd64"):
    ISA_FLAGS["avx2"] = ["-mavx2"]
    ISA_FLAGS["avx512"] = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
                           "-mprefer-vector-width=512"]

NUMPY = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]


def kernel_extension(level, flags):
    macros = [("FASTRELU_ISA", f'"{level}"'),
              ("FASTRELU_ISA_CFLAGS", '"{}"'.format(" ".join(flags)))]
    return Extension(f"fastrelu._kernels_{level}", [f"src/fastrelu/_kernels_{level}.pyx"],
                     include_dirs=[np.get_include(), "src/fastrelu"],
                     define_macros=NUMPY + macros,
                     extra_compile_args=CFLAGS + flags, extra_link_args=EXTRA_LDFLAGS)


extensions = [
    Extension("fastrelu._core", ["src/fastrelu/_core.pyx"],
              include_dirs=[np.get_include()], define_macros=NUMPY,
              extra_compile_args=CFLAGS + ["-fopenmp"],
              extra_link_args=EXTRA_LDFLAGS + ["-fopenmp"]),
    *(kernel_extension(level, flags) for level, flags in ISA_FLAGS.items()),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "initializedcheck": DEBUG,
            "cdivision": not DEBUG,
            "embedsignature": False,
        },
    ),
)
