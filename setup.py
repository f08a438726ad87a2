"""Build the compiled parts of fastrelu.

Two steps. First the Tempita templates (``src/fastrelu/*.tp``) are rendered
from the operation registry (``_registry.py``) and NumPy's type numbers of this
build; then Cython compiles:

* ``_engine``: dtype table, instruction-set choice, threads, executor;
* ``_loops_<level>``: the loops of ``_loops.pxi``, once per instruction-set
  level (x86-64: baseline SSE2, AVX2, AVX-512), so one wheel runs on every CPU
  of its architecture and ``_engine`` picks the best level at import;
* ``_functions`` (the public functions), ``_ufuncs``, ``kernels`` (Cython API).

Never add -march=native or -ffast-math here.

FASTRELU_DEBUG=1 turns Cython's bounds and wraparound checks back on.
FASTRELU_OPENMP=0 builds without OpenMP, =1 requires it; unset, it is used
when the compiler has it (omp.h and its runtime; Apple clang and Debian's
clang without libomp-dev have not). OpenMP only gives the default thread count.
GCC and clang build it; MSVC does not (see docs/packaging.rst).
FASTRELU_EXTRA_CFLAGS / FASTRELU_EXTRA_LDFLAGS add flags (sanitizer builds).
"""
import glob
import os
import platform
import runpy
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

SRC = "src/fastrelu"
DEBUG = os.environ.get("FASTRELU_DEBUG", "") not in ("", "0")
EXTRA_CFLAGS = os.environ.get("FASTRELU_EXTRA_CFLAGS", "").split()
EXTRA_LDFLAGS = os.environ.get("FASTRELU_EXTRA_LDFLAGS", "").split()
# -ffp-contract=off: no FMA contraction, so every level gives the same bits.
CFLAGS = ["-O3", "-fno-strict-aliasing", "-ffp-contract=off", *EXTRA_CFLAGS]
if DEBUG:
    CFLAGS += ["-UNDEBUG"]

# level -> flags. The AVX-512 level needs BW for the 8/16-bit loops; F16C
# converts float16 for the "real" operations (every AVX2 CPU has it; _engine checks).
ISA_FLAGS = {"baseline": []}
if platform.machine().lower() in ("x86_64", "amd64"):
    ISA_FLAGS["avx2"] = ["-mavx2", "-mf16c"]
    ISA_FLAGS["avx512"] = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mf16c",
                           "-mprefer-vector-width=512"]

# The loop modules only: -fno-trapping-math lets GCC vectorize leaky_relu's
# "compute x * slope, then select" (results are unchanged; only the IEEE flags
# of discarded lanes could be raised, and _engine restores the caller's flags).
# Not -ffast-math.
LOOP_CFLAGS = ["-fno-trapping-math"]
HEADERS = sorted(glob.glob(f"{SRC}/*.h"))       # rebuild on change
# The C-level API's element types (kernels.pxd): dtype name -> C type.
API_CTYPES = {"float16": "uint16_t", "float32": "float", "float64": "double",
              "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
              "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
              "uint64": "uint64_t"}


def render_templates():
    """Render every ``*.tp`` of the package from the registry (a build step)."""
    import numpy as np
    from Cython import Tempita

    registry = runpy.run_path(f"{SRC}/_registry.py")
    context = {
        "ops": registry["OPS"],
        "registry": registry,
        # (name, C type, NumPy type number of this build, is float)
        "dtypes": [(name, ctype, np.dtype(name).num, np.dtype(name).kind == "f")
                   for name, ctype in API_CTYPES.items()],
    }
    for template in sorted(glob.glob(f"{SRC}/*.tp")):
        with open(template) as f:
            text = Tempita.sub(f.read(), **context)
        target = template[:-len(".tp")]
        if not os.path.exists(target) or open(target).read() != text:
            with open(target, "w") as f:
                f.write(text)


def extensions():
    import numpy as np

    def extension(name, extra=(), macros=(), link=()):
        return Extension(f"fastrelu.{name}", [f"{SRC}/{name}.pyx"],
                         include_dirs=[np.get_include(), SRC],
                         define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                                        *macros],
                         depends=HEADERS, extra_compile_args=CFLAGS + list(extra),
                         extra_link_args=EXTRA_LDFLAGS + list(link))

    loops = [extension(f"_loops_{level}", LOOP_CFLAGS + flags,
                       [("FASTRELU_ISA", f'"{level}"'),
                        ("FASTRELU_ISA_CFLAGS", '"{}"'.format(" ".join(flags)))])
             for level, flags in ISA_FLAGS.items()]
    # _engine also gets OpenMP where the compiler has it (BuildExt)
    return [extension("_engine"), *loops, extension("_memory"),
            extension("_functions"), extension("_ufuncs"), extension("kernels")]


class BuildPy(build_py):
    """Render the templates first: the wheel ships generated .pxd/.pyi files."""

    def run(self):
        render_templates()
        super().run()


def openmp_flags(compiler):
    """["-fopenmp"] when OpenMP is wanted and this compiler compiles and links
    a program with it; [] otherwise (FASTRELU_OPENMP, see the top)."""
    from setuptools.errors import CompileError, LinkError

    setting = os.environ.get("FASTRELU_OPENMP", "").strip()
    if setting == "0":
        return []
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp_check.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objects, "omp_check", output_dir=tmp,
                                     extra_postargs=["-fopenmp"])
        except (CompileError, LinkError):
            if setting == "1":
                raise RuntimeError("FASTRELU_OPENMP=1, but this compiler cannot build "
                                   "with OpenMP (-fopenmp, omp.h)") from None
            print("fastrelu: building without OpenMP (this compiler has none); the "
                  "default thread count then follows OMP_NUM_THREADS read at import")
            return []
    return ["-fopenmp"]


class BuildExt(build_ext):
    """Render the templates, then cythonize (with the global directives)."""

    def finalize_options(self):
        from Cython.Build import cythonize

        render_templates()
        self.distribution.ext_modules = cythonize(
            extensions(),
            compiler_directives={
                "language_level": 3,
                "boundscheck": DEBUG,
                "wraparound": DEBUG,
                "initializedcheck": DEBUG,
                "cdivision": not DEBUG,
                "embedsignature": False,
            },
        )
        super().finalize_options()

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            raise RuntimeError("fastrelu builds with GCC or clang, not MSVC: its C code uses "
                               "GNU C (__atomic builtins, pthreads). See the platform table "
                               "in docs/packaging.rst.")
        flags = openmp_flags(self.compiler)
        for ext in self.extensions:
            if ext.name == "fastrelu._engine":
                ext.extra_compile_args += flags
                ext.extra_link_args += flags
        super().build_extensions()


setup(
    # placeholders, replaced by BuildExt once the templates are rendered
    ext_modules=[Extension("fastrelu._engine", [])],
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
)
