"""Shared value generation: special values per dtype, seeded random arrays with
about half negatives and the special values mixed in, and the matching
Hypothesis strategies. (pyproject.toml sets filterwarnings = error.)"""
import warnings

import numpy as np
import pytest
from hypothesis import settings, strategies as st
from hypothesis.extra import numpy as hnp

from oracle import ALL_DTYPES, from_bits, native_dtype, uint_dtype

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


# --- special values ------------------------------------------------------------

def float_special_bits(dtype):
    """Bit patterns of the special values of float ``dtype``, with their names."""
    dtype = native_dtype(dtype)
    nbits = 8 * dtype.itemsize
    nmant = np.finfo(dtype).nmant
    sign = 1 << (nbits - 1)
    exp = (sign - 1) ^ ((1 << nmant) - 1)     # all exponent bits
    quiet = 1 << (nmant - 1)
    top_mant = (1 << nmant) - 1
    finfo = np.finfo(dtype)

    def b(value):
        return int(np.array(value, dtype=dtype).view(uint_dtype(dtype)))

    specials = {
        "+0.0": 0,
        "-0.0": sign,
        "+inf": exp,
        "-inf": sign | exp,
        "qnan": exp | quiet,
        "-qnan": sign | exp | quiet,
        "qnan-payload": exp | quiet | 0x123,
        "-qnan-payload": sign | exp | quiet | 0x123,
        "snan": exp | 1,
        "-snan": sign | exp | 1,
        "nan-all-ones": exp | top_mant,
        "-nan-all-ones": sign | exp | top_mant,
        "min-subnormal": 1,
        "-min-subnormal": sign | 1,
        "max-subnormal": top_mant,
        "-max-subnormal": sign | top_mant,
        "tiny": b(finfo.smallest_normal),
        "-tiny": b(-finfo.smallest_normal),
        "max": b(finfo.max),
        "min": b(finfo.min),
        "one": b(1),
        "-one": b(-1),
        "eps": b(finfo.eps),
        "-eps": b(-finfo.eps),
    }
    return specials


def int_specials(dtype):
    """The special values of integer ``dtype``, with their names."""
    info = np.iinfo(dtype)
    values = {"0": 0, "1": 1, "max": info.max, "max-1": info.max - 1}
    if info.min < 0:
        values.update({"-1": -1, "min": info.min, "min+1": info.min + 1})
    else:
        half = 1 << (8 * np.dtype(dtype).itemsize - 1)
        values.update({"high-bit": half, "high-bit-1": half - 1, "high-bit+1": half + 1})
    return values


def special_values(dtype):
    """A 1-D array of every special value of ``dtype`` (native byte order)."""
    dtype = native_dtype(dtype)
    if dtype.kind == "f":
        return from_bits(list(float_special_bits(dtype).values()), dtype)
    return np.array(list(int_specials(dtype).values()), dtype=dtype)


# --- random arrays ---------------------------------------------------------------

def random_values(rng, dtype, n):
    """``n`` values of ``dtype``: about half negative (for signed types), with the
    special values and, for floats, random bit patterns (any NaN payload) mixed in."""
    dtype = native_dtype(dtype)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            scale = np.exp2(rng.integers(-30, 30, size=n)).astype(np.float64)
            a = (rng.standard_normal(n) * scale).astype(dtype)
        # a tenth of the elements: arbitrary bits (NaNs with every payload, subnormals)
        k = n // 10
        if k:
            ut = uint_dtype(dtype)
            raw = rng.integers(0, np.iinfo(ut).max, size=k, dtype=ut, endpoint=True)
            a[rng.integers(0, n, size=k)] = raw.view(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
        small = rng.integers(-3 if info.min < 0 else 0, 4, size=n).astype(dtype)
        a = np.where(rng.random(n) < 0.3, small, a)
    # a fifth of the elements: the special values
    specials = special_values(dtype)
    k = n // 5
    if k:
        a[rng.integers(0, n, size=k)] = specials[rng.integers(0, len(specials), k)]
    elif n:
        a[rng.integers(0, n)] = specials[rng.integers(0, len(specials))]
    return a


@pytest.fixture
def rng():
    """A fixed-seed generator (each test gets the same, reproducible stream)."""
    return np.random.default_rng(20240611)


_POOL_SIZE = 1 << 17
_POOLS = {}


def _pool(dtype):
    dtype = native_dtype(dtype)
    if dtype not in _POOLS:
        _POOLS[dtype] = random_values(np.random.default_rng(dtype.num), dtype, _POOL_SIZE)
    return _POOLS[dtype]


@pytest.fixture
def values(rng):
    """``values(dtype, n)``: a fresh seeded random array for the test (see
    random_values); small ones are random slices of a per-dtype pool, for speed."""
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


# --- Hypothesis strategies -------------------------------------------------------

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


#: Every supported dtype, in both byte orders.
dtypes = st.sampled_from(ALL_DTYPES).flatmap(
    lambda dt: st.sampled_from([dt, dt.newbyteorder()]))

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7)


@st.composite
def arrays(draw, dtype=None, shape=None):
    """An array of a supported dtype (either byte order) with arbitrary bit patterns."""
    dtype = draw(dtypes) if dtype is None else np.dtype(dtype)
    shape = draw(shapes) if shape is None else shape
    raw = draw(hnp.arrays(uint_dtype(dtype), shape, elements=bit_elements(dtype)))
    a = raw.view(native_dtype(dtype))
    if not dtype.isnative:
        a = a.byteswap().view(dtype)     # same values, other byte order
    return a
