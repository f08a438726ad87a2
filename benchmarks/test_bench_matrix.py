"""The matrix of ``python -m fastrelu bench --matrix`` as pytest-benchmark
groups: one group per (dtype, size, operation), fastrelu against PyTorch (on
its default threads; the report takes its best of 1 and 2). Every timed call
is checked against the plain-NumPy result."""
import numpy as np
import pytest

from fastrelu import _bench, _matrix

torch = pytest.importorskip("torch")

CELLS = [(dt, n, op) for dt in _matrix.DTYPES for n in _matrix.SIZES for op in _matrix.OPS]


@pytest.mark.parametrize("impl", ["fastrelu", "torch"])
@pytest.mark.parametrize("dtype,size,op", CELLS,
                         ids=lambda v: f"n={v:.0e}" if isinstance(v, int) else v)
def test_matrix_cell(benchmark, dtype, size, op, impl):
    benchmark.group = f"matrix {dtype} n={size:.0e} {op}"
    x = _bench.random_signed(size, dtype, seed=1)
    g = _bench.random_signed(size, dtype, seed=2)
    if op == "relu_ steady":
        x = np.maximum(x, 0)
    o = np.empty_like(x)
    make = _matrix._fastrelu if impl == "fastrelu" else (
        lambda *a: _matrix._torch(torch, *a))
    result = benchmark(make(op, x, g, o))
    if op.endswith("out="):
        result = o
    zero = np.zeros((), x.dtype)
    want = np.where(x > 0, g, zero) if op.startswith("relu_backward") else np.where(x > 0, x, zero)
    np.testing.assert_array_equal(np.asarray(result), want)
