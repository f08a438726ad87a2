"""Shared data for the pytest-benchmark suite.

Run:  pytest benchmarks --benchmark-only            (the default grid)
      FASTRELU_BENCH_FULL=1 pytest benchmarks ...   (every size 10 .. 1e7)
Compare runs: --benchmark-autosave, then --benchmark-compare.
CI runs the suite with --benchmark-disable: every case once, as a smoke test.

How to benchmark against NumPy fairly: benchmarks/README.md.
"""
import os

import numpy as np
import pytest

FULL = os.environ.get("FASTRELU_BENCH_FULL", "") not in ("", "0")
SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000] if FULL else \
    [10, 1_000, 100_000, 10_000_000]
DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64"]
PURE_PYTHON_MAX = 100_000   # a list comprehension at 1e7 takes a second a round


def random_signed(n, dtype, seed=0):
    """Half negative, half positive values of ``dtype`` (random signs)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(n).astype(dtype)
    hi = min(np.iinfo(dtype).max, 1000)
    return rng.integers(-hi, hi, size=n, endpoint=True).astype(dtype)


def pytest_collection_modifyitems(items):
    # pytest 9.2 dropped the private Node._nodeid that pytest-benchmark (5.2, 5.3)
    # reads when it builds the benchmark fixture, even under --benchmark-disable
    # (ionelmc/pytest-benchmark#321): alias it to the public nodeid. A no-op with
    # the pytest versions that still have it.
    for item in items:
        if not hasattr(item, "_nodeid"):
            item._nodeid = item.nodeid


@pytest.fixture(params=SIZES, ids=lambda n: f"n={n:.0e}")
def size(request):
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param
