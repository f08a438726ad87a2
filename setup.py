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
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTRELU_DEBUG", "") not in ("", "0")
EXTRA_CFLAGS = os.environ.get("FASTRELU_EXTRA_CFLAGS", "").split()
EXTRA_LDFLAGS = os.environ.get("FASTRELU_EXTRA_LDFLAGS", "").split()
# -ffp-contract=off: no FMA contraction, so every level gives the same bits.
CFLAGS = ["-O3", "-fno-strict-aliasing", "-ffp-contract=off", *EXTRA_CFLAGS]
if DEBUG:
    CFLAGS += ["-UNDEBUG"]

# level -> flags. The AVX-512 level needs BW for the 8/16-bit kernels; F16C
# converts float16 for leaky_relu (every AVX2 CPU has it; _core checks).
ISA_FLAGS = {"baseline": []}
if platform.machine().lower() in ("x86_64", "amd64"):
    ISA_FLAGS["avx2"] = ["-mavx2", "-mf16c"]
    ISA_FLAGS["avx512"] = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mf16c",
                           "-mprefer-vector-width=512"]

NUMPY = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]
HEADERS = [f"src/fastrelu/{h}" for h in ("_runtime.h", "_pool.h", "_stream.h")]  # rebuild on change


# The kernel modules only: -fno-trapping-math lets GCC vectorize leaky_relu's
# "compute x * slope, then select" (results are unchanged; only the IEEE flags
# of discarded lanes could be raised, and _core clears them). Not -ffast-math.
KERNEL_CFLAGS = ["-fno-trapping-math"]


def kernel_extension(level, flags):
    macros = [("FASTRELU_ISA", f'"{level}"'),
              ("FASTRELU_ISA_CFLAGS", '"{}"'.format(" ".join(flags)))]
    return Extension(f"fastrelu._kernels_{level}", [f"src/fastrelu/_kernels_{level}.pyx"],
                     include_dirs=[np.get_include(), "src/fastrelu"],
                     define_macros=NUMPY + macros, depends=HEADERS,
                     extra_compile_args=CFLAGS + KERNEL_CFLAGS + flags,
                     extra_link_args=EXTRA_LDFLAGS)


# The C-level API (fastrelu/kernels.pxd, .pyx): one entry per (operation, dtype),
# rendered from templates. (name, C type, NumPy type number, is float)
API_DTYPES = [
    ("float16", "uint16_t", "23", True), ("float32", "float", "11", True),
    ("float64", "double", "12", True), ("int8", "int8_t", "1", False),
    ("int16", "int16_t", "3", False), ("int32", "int32_t", "5", False),
    ("int64", "int64_t", "7", False), ("uint8", "uint8_t", "2", False),
    ("uint16", "uint16_t", "4", False), ("uint32", "uint32_t", "6", False),
    ("uint64", "uint64_t", "8", False),
]
assert all(np.dtype(name).num == int(num) for name, _, num, _ in API_DTYPES)


def render(template):
    with open(template) as f:
        text = Tempita.sub(f.read(), dtypes=API_DTYPES)
    target = template[:-len(".tp")]
    if not os.path.exists(target) or open(target).read() != text:
        with open(target, "w") as f:
            f.write(text)


render("src/fastrelu/kernels.pxd.tp")
render("src/fastrelu/kernels.pyx.tp")

extensions = [
    Extension("fastrelu._core", ["src/fastrelu/_core.pyx"],
              include_dirs=[np.get_include(), "src/fastrelu"], define_macros=NUMPY,
              depends=HEADERS,
              extra_compile_args=CFLAGS + ["-fopenmp"],
              extra_link_args=EXTRA_LDFLAGS + ["-fopenmp"]),
    *(kernel_extension(level, flags) for level, flags in ISA_FLAGS.items()),
    Extension("fastrelu.kernels", ["src/fastrelu/kernels.pyx"],
              include_dirs=[np.get_include()], define_macros=NUMPY,
              extra_compile_args=CFLAGS, extra_link_args=EXTRA_LDFLAGS),
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
