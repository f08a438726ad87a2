"""fastrelu vs NumPy vs pure Python, one benchmark group per (op, dtype, size)."""
import numpy as np
import pytest

import fastrelu as fr
from conftest import PURE_PYTHON_MAX, SIZES, random_signed


def _group(benchmark, op, dtype, n):
    benchmark.group = f"{op} {dtype} n={n:.0e}"


# --- relu(x), allocating --------------------------------------------------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy"])
def test_relu(benchmark, impl, dtype, size):
    _group(benchmark, "relu", dtype, size)
    x = random_signed(size, dtype)
    result = benchmark(fr.relu if impl == "fastrelu" else (lambda a: np.maximum(a, 0)), x)
    np.testing.assert_array_equal(result, np.where(x > 0, x, 0))


@pytest.mark.parametrize("size", [n for n in SIZES if n <= PURE_PYTHON_MAX],
                         ids=lambda n: f"n={n:.0e}")
def test_relu_pure_python(benchmark, dtype, size):
    """The baseline users start from: a list comprehension over Python numbers."""
    _group(benchmark, "relu", dtype, size)
    x = random_signed(size, dtype)
    lst = x.tolist()
    zero = 0.0 if x.dtype.kind == "f" else 0
    result = benchmark(lambda: [max(zero, v) for v in lst])
    np.testing.assert_array_equal(np.asarray(result, dtype=x.dtype), np.where(x > 0, x, 0))


# --- relu(x, out=o) ------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy", "copyto"])
def test_relu_out(benchmark, impl, dtype, size):
    _group(benchmark, "relu out=", dtype, size)
    x = random_signed(size, dtype)
    out = np.empty_like(x)
    if impl == "fastrelu":
        benchmark(fr.relu, x, out=out)
    elif impl == "numpy":
        benchmark(np.maximum, x, 0, out=out)
    else:   # the physical reference: a plain copy moves the same bytes
        benchmark(np.copyto, out, x)
        return
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0))


# --- relu_(x), in place: every round starts from data with negatives -------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy"])
def test_relu_inplace(benchmark, impl, dtype, size):
    _group(benchmark, "relu_", dtype, size)
    x = random_signed(size, dtype)
    fn = fr.relu_ if impl == "fastrelu" else (lambda a: np.maximum(a, 0, out=a))
    rounds = max(5, min(200, 2_000_000 // size))
    benchmark.pedantic(fn, setup=lambda: ((x.copy(),), {}), rounds=rounds)


# --- relu_backward(g, x) vs NumPy's g * (x > 0) -------------------------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy", "numpy_where"])
def test_relu_backward(benchmark, impl, dtype, size):
    _group(benchmark, "relu_backward", dtype, size)
    x = random_signed(size, dtype, seed=1)
    g = random_signed(size, dtype, seed=2)
    if impl == "fastrelu":
        result = benchmark(fr.relu_backward, g, x)
    elif impl == "numpy":
        result = benchmark(lambda: g * (x > 0))
    else:
        result = benchmark(lambda: np.where(x > 0, g, 0))
    np.testing.assert_array_equal(result, np.where(x > 0, g, 0))


# --- relu_grad(x) vs (x > 0).astype(dtype) ---------------------------------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy"])
def test_relu_grad(benchmark, impl, dtype, size):
    _group(benchmark, "relu_grad", dtype, size)
    x = random_signed(size, dtype)
    if impl == "fastrelu":
        result = benchmark(fr.relu_grad, x)
    else:
        result = benchmark(lambda: (x > 0).astype(x.dtype))
    np.testing.assert_array_equal(result, (x > 0).astype(x.dtype))


# --- strided input: relu(x[::2]) ---------------------------------------------------------

@pytest.mark.parametrize("impl", ["fastrelu", "numpy"])
def test_relu_strided(benchmark, impl, dtype, size):
    _group(benchmark, "relu x[::2]", dtype, size)
    x = random_signed(2 * size, dtype)[::2]
    result = benchmark(fr.relu if impl == "fastrelu" else (lambda a: np.maximum(a, 0)), x)
    np.testing.assert_array_equal(result, np.where(x > 0, x, 0))
