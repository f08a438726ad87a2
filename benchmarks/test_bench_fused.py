"""The fused operations (``_registry.FUSED``): one group per (case, size),
fastrelu's fused call against the NumPy pipeline it replaces and the fastrelu
operation it should cost no more than -- the implementations of
``python -m fastrelu bench`` (``_bench.FUSED_CASES``), float32, (batch, 1000)."""
import numpy as np
import pytest

from conftest import random_signed
from fastrelu import _bench

SIZES = [1_000_000, 10_000_000]
IMPLS = _bench.implementations(threads=2)
CASES = [(case, impl) for case in _bench.FUSED_CASES for impl in IMPLS[case]]


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("case,impl", CASES)
def test_fused(benchmark, case, impl, size):
    benchmark.group = f"{case} float32 n={size:.0e}"
    x = random_signed(size, "float32", seed=1)
    g = random_signed(size, "float32", seed=2)
    fn = IMPLS[case][impl](x, g)
    assert fn is not None
    if case in _bench.INPLACE_CASES:        # on a fresh copy per round
        benchmark.pedantic(fn, setup=lambda: ((x.copy(),), {}), rounds=5)
    else:
        benchmark(fn)
