"""Fixtures and Hypothesis strategies on top of tests/helpers.py: seeded random
arrays (``rng``, ``values``, ``big_values``), the dispatch thresholds lowered
so that small arrays take the threaded and streaming paths (``threaded``), and
arrays of any supported dtype and byte order with arbitrary bits (``arrays``).
(pyproject.toml sets filterwarnings = error.)"""
import warnings

import numpy as np
import pytest
from hypothesis import settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastrelu
from fastrelu import _engine
from helpers import ALL_DTYPE_NAMES, native_dtype, random_values, special_values, uint_dtype

# When a Hypothesis test fails, Hypothesis imports hypothesis.extra._patching (libcst,
# mypy_extensions), which emits a DeprecationWarning; with filterwarnings = error that
# turns the failure report into an INTERNALERROR. Import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except Exception:  # optional dependency (libcst) missing: nothing to pre-import
        pass

# Keep Hypothesis from writing an example database into the repository.
settings.register_profile("fastrelu", database=None)
settings.load_profile("fastrelu")


# --- random arrays -------------------------------------------------------------------------

@pytest.fixture
def rng():
    """A fixed-seed generator (each test gets the same, reproducible stream)."""
    return np.random.default_rng(20240611)


_POOL_SIZE = 1 << 18
_POOLS = {}


def _pool(dtype):
    dtype = native_dtype(dtype)
    if dtype not in _POOLS:
        _POOLS[dtype] = random_values(np.random.default_rng(dtype.num), dtype, _POOL_SIZE)
    return _POOLS[dtype]


@pytest.fixture
def values(rng):
    """``values(dtype, n)``: a fresh seeded random array for the test (see
    helpers.random_values); small ones are random slices of a per-dtype pool."""
    def get(dtype, n):
        if n > _POOL_SIZE // 2:
            return random_values(rng, dtype, n)
        start = rng.integers(0, _POOL_SIZE - n + 1)
        return _pool(dtype)[start:start + n].copy()
    return get


_BIG_CACHE = {}


@pytest.fixture(scope="session")
def big_values():
    """``big_values(dtype, n)``: like ``values`` but generated once per session
    (for arrays of millions of elements); every call returns a fresh copy."""
    def get(dtype, n):
        key = (native_dtype(dtype), n)
        if key not in _BIG_CACHE:
            _BIG_CACHE[key] = random_values(np.random.default_rng(n), key[0], n)
        return _BIG_CACHE[key].copy()
    return get


# --- the threaded and streaming paths, deterministically -------------------------------------

@pytest.fixture
def threaded():
    """Every call releases the GIL, is split between 2 threads when its output
    is larger than one thread chunk (helpers.threaded_size), and streams its
    out-of-place output (thresholds at 0, via the private
    ``_engine.thresholds`` hook); restored afterwards."""
    previous = _engine.thresholds(nogil_min_bytes=0, parallel_min_bytes=1, stream_min_bytes=0,
                                  cold_parallel_min_bytes=1)
    threads = fastrelu.set_num_threads(2)     # process-wide: a test may set its own
    try:
        yield
    finally:
        fastrelu.set_num_threads(threads)
        _engine.thresholds(**previous)


# --- Hypothesis strategies -----------------------------------------------------------------

def special_bit_patterns(dtype):
    """Special values of ``dtype`` as raw bits (unsigned integers of its width)."""
    dtype = native_dtype(dtype)
    return [int(v) for v in special_values(dtype).view(uint_dtype(dtype))]


def bit_elements(dtype):
    """Raw element bits of ``dtype``: special values often, any bit pattern otherwise."""
    top = int(np.iinfo(uint_dtype(dtype)).max)
    return st.one_of(st.sampled_from(special_bit_patterns(dtype)),
                     st.integers(0, top),
                     st.integers(0, min(1000, top)),              # +0 and tiny positives
                     st.integers(max(top - 1000, 0), top))        # top-bit patterns


def dtypes(names=ALL_DTYPE_NAMES):
    """One of the dtypes ``names``, in either byte order."""
    return st.sampled_from([np.dtype(n) for n in names]).flatmap(
        lambda dt: st.sampled_from([dt, dt.newbyteorder()]))


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7)


@st.composite
def arrays(draw, dtype=None, shape=None, names=ALL_DTYPE_NAMES):
    """An array of ``dtype`` (default: one of ``names``, either byte order) and
    ``shape`` (default: any up to 4-D) with arbitrary bit patterns."""
    dtype = draw(dtypes(names)) if dtype is None else np.dtype(dtype)
    shape = draw(shapes) if shape is None else shape
    raw = draw(hnp.arrays(uint_dtype(dtype), shape, elements=bit_elements(dtype)))
    a = raw.view(native_dtype(dtype))
    if not dtype.isnative:
        a = a.byteswap().view(dtype)     # same values, other byte order
    return a
