"""Every operation of the registry, out of place into an existing ``out``: one
group per (operation, dtype, size), fastrelu against NumPy's natural spelling
(the one ``python -m fastrelu bench`` uses). A new registry row is benchmarked
here without touching this file."""
import numpy as np
import pytest

import fastrelu as fr
from conftest import random_signed
from fastrelu import _bench, _reference
from fastrelu._registry import OPS

SIZES = [100_000, 10_000_000]
CASES = [(op, dt) for op in OPS for dt in ("float32", "int8") if dt in op.dtype_names]


@pytest.mark.parametrize("impl", ["fastrelu", "numpy"])
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("op,dtype", CASES, ids=lambda v: getattr(v, "name", v))
def test_op_out(benchmark, op, dtype, size, impl):
    benchmark.group = f"{op.name} out= {dtype} n={size:.0e}"
    x = random_signed(size, dtype, seed=1)
    g = random_signed(size, dtype, seed=2)
    arrays = (x,) if op.arity == 1 else (g, x)
    params = _bench._params(op, x.dtype)
    out = np.empty_like(x)
    if impl == "fastrelu":
        benchmark(getattr(fr, op.name), *arrays, *params, out=out)
        result = out
    else:
        numpy_form = _bench._NUMPY.get(op.name)
        if numpy_form is None:          # no natural spelling: the plain-NumPy twin
            result = benchmark(getattr(_reference, op.name), *arrays, *params)
        else:
            result = benchmark(numpy_form, x, g, out, params)
            result = out if result is out or result is None else result
    expected = getattr(_reference, op.name)(*arrays, *params)
    np.testing.assert_allclose(np.asarray(result, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=1e-3)
