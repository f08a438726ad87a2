"""Arrays of more than 2**31 elements (64-bit indexing everywhere: the kernels,
the thread chunks, the streaming stores).

An int8 array of 2**31 + 4099 elements (~2.15 GB per array; up to three
arrays at once) with distinctive values at the last elements and around
index 2**31: relu in every mode, relu_backward, and every operation of the
registry that takes int8 (into one reused output). Skipped when MemAvailable
is under 8 GB; finishes in well under a minute on a 2-core machine.
"""
import time

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
from helpers import OPS, assert_same, call, call_inplace, expected, op_id, param_sets

N = 2**31 + 4099
MIN_AVAILABLE = 8 << 30
CHUNK = 1 << 24


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(mem_available() < MIN_AVAILABLE,
                       reason=f"needs >= 8 GB of available memory (/proc/meminfo MemAvailable "
                              f"is {mem_available() / 2**30:.1f} GB); the arrays take ~6.5 GB"),
]

# index -> value of x there; every other element of x is BACKGROUND
BACKGROUND = -1
SPECIAL = {
    0: 5, 1: -128,
    2**31 - 2: 9, 2**31 - 1: 17, 2**31: -5, 2**31 + 1: 33, 2**31 + 2: -1,
    2**32 - 1 if 2**32 - 1 < N else N - 4: 0,
    N - 3: 127, N - 2: -77, N - 1: 42,
}


def count_equal(a, value):
    """Number of elements of huge 1-D ``a`` equal to ``value`` (chunked, with one
    reused mask buffer: no 2 GB temporaries and no fresh pages to fault in)."""
    mask = np.empty(min(CHUNK, a.size), bool)
    total = 0
    for i in range(0, a.size, CHUNK):
        part = a[i:i + CHUNK]
        m = mask[:part.size]
        np.equal(part, value, out=m)
        total += int(np.count_nonzero(m))
    return total


def make_x(background=BACKGROUND):
    x = np.full(N, background, np.int8)
    for i, v in SPECIAL.items():
        x[i] = v
    return x


def check_relu(y, what):
    """relu of make_x(): the positive specials survive, everything else is 0."""
    positives = {i: v for i, v in SPECIAL.items() if v > 0}
    for i in sorted(SPECIAL):
        assert int(y[i]) == max(SPECIAL[i], 0), f"{what}: y[{i}] = {y[i]}"
    assert count_equal(y, 0) == N - len(positives), f"{what}: stray non-zero elements"


@pytest.mark.parametrize("threads", [1, None], ids=["1thread", "default-threads"])
def test_relu_and_relu_inplace_beyond_2_31(threads):
    """With 1 thread a single kernel call walks past index 2**31; with the
    default threads the chunks start above it."""
    t0 = time.perf_counter()
    with fastrelu.num_threads(threads):
        x = make_x()
        assert x.size > 2**31
        y = fastrelu.relu(x)                        # fresh out: streaming stores
        check_relu(y, "relu")
        assert int(x[2**31]) == -5 and int(x[N - 2]) == -77, "relu modified its input"
        y[...] = 99
        assert fastrelu.relu(x, out=y) is y         # into an existing (cached) array
        check_relu(y, "relu out=")
        y[...] = 99
        ufuncs.relu(x, out=y)                  # ufunc path: one inner loop of N
        check_relu(y, "ufunc_relu")
        del y
        assert fastrelu.relu_(x) is x               # in place
        check_relu(x, "relu_")
        g = fastrelu.relu_grad(make_x(BACKGROUND))
        for i, v in SPECIAL.items():
            assert int(g[i]) == (1 if v > 0 else 0), f"relu_grad[{i}]"
        assert count_equal(g, 1) == sum(v > 0 for v in SPECIAL.values())
    assert time.perf_counter() - t0 < 60


def test_relu_backward_beyond_2_31():
    t0 = time.perf_counter()
    # x mostly positive, so most of g must be copied; zeros where x <= 0
    x = make_x(background=3)
    g = np.full(N, 7, np.int8)
    g[2**31 - 1], g[2**31], g[2**31 + 1], g[N - 1], g[N - 3] = -9, 11, -13, 100, -100
    out = fastrelu.relu_backward(g, x)
    expected = {i: (int(g[i]) if v > 0 else 0) for i, v in SPECIAL.items()}
    for i, e in expected.items():
        assert int(out[i]) == e, f"relu_backward[{i}] = {out[i]}, expected {e}"
    nonpositive = sum(v <= 0 for v in SPECIAL.values())
    assert count_equal(out, 0) == nonpositive
    # in place into grad_output
    assert fastrelu.relu_backward(g, x, out=g) is g
    for i, e in expected.items():
        assert int(g[i]) == e, f"relu_backward out=g [{i}]"
    assert count_equal(g, 0) == nonpositive
    assert time.perf_counter() - t0 < 60


#: windows (start, stop) of the array where its distinctive values are
WINDOWS = [(0, 8), (2**31 - 8, 2**31 + 8), (N - 8, N)] + (
    [(2**32 - 4, 2**32 + 4)] if 2**32 + 4 <= N else [])
INT8_OPS = [op for op in OPS if "int8" in op.dtype_names]


@pytest.fixture(scope="class")
def huge():
    """The huge input and an output for TestEveryOp, made once."""
    x = make_x()
    out = np.empty_like(x)
    yield x, out
    del x, out


class TestEveryOp:
    """Every op that takes int8, once, with the default threads."""

    @pytest.mark.parametrize("op", INT8_OPS, ids=op_id)
    def test_every_op_beyond_2_31(self, huge, op):
        """The windows around index 0, 2**31 and the end hold the reference's
        values; every other element is op(BACKGROUND) (counted); x is
        unchanged; in place too."""
        x, out = huge
        t0 = time.perf_counter()
        params = param_sets(op, "int8")[0]
        arrays = (x,) * op.arity                     # grad_output is x itself
        assert call(op, arrays, params, out=out) is out
        background = expected(op, (np.array([BACKGROUND], np.int8),) * op.arity, params)[0]
        special = 0
        for start, stop in WINDOWS:
            window = (x[start:stop],) * op.arity
            want = expected(op, window, params)
            assert_same(out[start:stop], want, f"{op.name}[{start}:{stop}]")
            special += int(np.count_nonzero(want != background))
        assert count_equal(out, background) == N - special, f"{op.name}: stray elements"
        assert int(x[2**31]) == SPECIAL[2**31] and int(x[N - 2]) == SPECIAL[N - 2]
        if op.inplace:
            out[...] = x
            assert call_inplace(op, out, params) is out
            for start, stop in WINDOWS:
                assert_same(out[start:stop], expected(op, (x[start:stop],), params))
        assert time.perf_counter() - t0 < 30
