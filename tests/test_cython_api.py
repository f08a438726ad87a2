"""A downstream Cython extension cimports fastrelu.kernels and gets its results."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastrelu

pytest.importorskip("Cython")

DOWNSTREAM = textwrap.dedent("""
    # cython: language_level=3
    from libc.stdint cimport int8_t, uint16_t
    from fastrelu.kernels cimport (relu_float32, relu_float64, relu_int8, relu_float16,
                                   relu_backward_float32, relu_grad_int8, relu6_float64,
                                   leaky_relu_float32, leaky_relu_backward_float64,
                                   relu6_backward_int8)
    import numpy as np

    def relu32(float[::1] x):
        out = np.empty(x.shape[0], dtype=np.float32)
        cdef float[::1] o = out
        if x.shape[0]:
            with nogil:
                relu_float32(&x[0], &o[0], x.shape[0])
        return out

    def relu32_inplace(float[::1] x):
        with nogil:
            relu_float32(&x[0], &x[0], x.shape[0])

    def relu16(uint16_t[::1] x):
        out = np.empty(x.shape[0], dtype=np.uint16)
        cdef uint16_t[::1] o = out
        relu_float16(&x[0], &o[0], x.shape[0])
        return out.view(np.float16)

    def relu8(int8_t[::1] x):
        out = np.empty(x.shape[0], dtype=np.int8)
        cdef int8_t[::1] o = out
        relu_int8(&x[0], &o[0], x.shape[0])
        return out

    def grad8(int8_t[::1] x):
        out = np.empty(x.shape[0], dtype=np.int8)
        cdef int8_t[::1] o = out
        relu_grad_int8(&x[0], &o[0], x.shape[0])
        return out

    def backward32(float[::1] g, float[::1] x):
        out = np.empty(x.shape[0], dtype=np.float32)
        cdef float[::1] o = out
        relu_backward_float32(&g[0], &x[0], &o[0], x.shape[0])
        return out

    def relu6_64(double[::1] x):
        out = np.empty(x.shape[0])
        cdef double[::1] o = out
        relu6_float64(&x[0], &o[0], x.shape[0])
        return out

    def leaky32(float[::1] x, double slope):
        out = np.empty(x.shape[0], dtype=np.float32)
        cdef float[::1] o = out
        leaky_relu_float32(&x[0], &o[0], x.shape[0], slope)
        return out

    def leaky_backward64(double[::1] g, double[::1] x, double slope):
        out = np.empty(x.shape[0])
        cdef double[::1] o = out
        leaky_relu_backward_float64(&g[0], &x[0], &o[0], x.shape[0], slope)
        return out

    def relu6_backward8(int8_t[::1] g, int8_t[::1] x):
        out = np.empty(x.shape[0], dtype=np.int8)
        cdef int8_t[::1] o = out
        relu6_backward_int8(&g[0], &x[0], &o[0], x.shape[0])
        return out
""")

SETUP = textwrap.dedent("""
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    setup(ext_modules=cythonize([Extension("downstream", ["downstream.pyx"])]))
""")

CHECK = textwrap.dedent("""
    import numpy as np
    import downstream as d
    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_003).astype(np.float32)
    x[:4] = [np.nan, -0.0, -np.inf, np.inf]
    zero32 = np.float32(0)
    def same(a, b):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype)
        assert np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")), (a, b)
    relu = lambda v: np.where(v <= 0, np.zeros((), v.dtype), v)
    same(d.relu32(x), relu(x))
    y = x.copy(); d.relu32_inplace(y); same(y, relu(x))
    h = x.astype(np.float16)
    same(d.relu16(h.view(np.uint16)), relu(h))
    i8 = rng.integers(-128, 128, 1000).astype(np.int8)
    same(d.relu8(i8), np.maximum(i8, 0))
    same(d.grad8(i8), (i8 > 0).astype(np.int8))
    g = rng.standard_normal(x.size).astype(np.float32)
    same(d.backward32(g, x), np.where(x > 0, g, zero32))
    x64 = x.astype(np.float64) * 5
    same(d.relu6_64(x64), np.where(x64 >= 6, 6.0, relu(x64)))
    with np.errstate(all="ignore"):
        same(d.leaky32(x, 0.1), np.where(x > 0, x, x * np.float32(0.1)))
        g64 = g.astype(np.float64)
        same(d.leaky_backward64(g64, x64, 0.2), np.where(x64 > 0, g64, g64 * 0.2))
    same(d.relu6_backward8(i8, i8), np.where((i8 > 0) & (i8 < 6), i8, np.int8(0)))
    print("ok")
""")


@pytest.mark.slow
def test_downstream_extension_cimports_the_kernels(tmp_path):
    (tmp_path / "downstream.pyx").write_text(DOWNSTREAM)
    (tmp_path / "setup.py").write_text(SETUP)
    (tmp_path / "check.py").write_text(CHECK)
    env = dict(os.environ)
    # the directory that holds the fastrelu package (installed or in-tree)
    root = os.path.dirname(os.path.dirname(fastrelu.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    check = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.strip() == "ok"


def test_the_pxd_is_installed_next_to_the_module():
    here = os.path.dirname(fastrelu.__file__)
    assert os.path.exists(os.path.join(here, "kernels.pxd"))
    from fastrelu import kernels   # the module that implements it imports cleanly
    assert kernels.__name__ == "fastrelu.kernels"
