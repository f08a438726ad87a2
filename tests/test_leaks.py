"""No memory or reference leaks: every public function (and the ufuncs), on
success paths over several layouts and on every documented error path, is
called thousands of times; the memory traced by tracemalloc (Python's domain
and NumPy's data domain, ``np.lib.tracemalloc_domain``) must not grow beyond a
small slack, and the reference counts of the inputs, ``out``, their dtypes and
types must be unchanged.
"""
import gc
import io
import sys
import tracemalloc

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
from fastrelu import _engine

ITERATIONS = 3000
WARMUP = 300
SLACK_BYTES = 16 * 1024          # absolute slack over all iterations
NUMPY_DOMAIN = np.lib.tracemalloc_domain


def _arrays():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(257).astype(np.float32)
    g = rng.standard_normal(257).astype(np.float32)
    big = rng.standard_normal(40_000).astype(np.float32)    # > the no-GIL threshold
    bigg = rng.standard_normal(40_000).astype(np.float32)
    m = rng.integers(-100, 100, size=(17, 9)).astype(np.int16)
    return x, g, big, bigg, m


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def success_cases():
    """name -> (callable, objects whose refcounts must not change)."""
    x, g, big, bigg, m = _arrays()
    out = np.empty_like(x)
    bigout = np.empty_like(big)
    xs, gs = x[::2], g[::-2]
    outs = np.empty(xs.shape, xs.dtype)
    xsw = x.astype(x.dtype.newbyteorder())
    mf = np.asfortranarray(m)
    mout = np.empty_like(m)
    mutable = x.copy()
    mutable_s = np.empty(2 * x.size, x.dtype)[::2]
    x0d = np.array(-2.5)
    xe = np.empty((0, 3), np.int8)
    lst = [-1.0, 2.0, float("nan")]
    xu8 = np.arange(200, dtype=np.uint8)
    ro = _readonly(x)
    sink = io.StringIO()
    return {
        "relu C": (lambda: fastrelu.relu(x), [x]),
        "relu C out": (lambda: fastrelu.relu(x, out=out), [x, out]),
        "relu C large (no GIL, threads)": (lambda: fastrelu.relu(big, out=bigout), [big, bigout]),
        "relu strided": (lambda: fastrelu.relu(xs), [xs, x]),
        "relu strided out": (lambda: fastrelu.relu(xs, out=outs), [xs, outs]),
        "relu byteswapped": (lambda: fastrelu.relu(xsw), [xsw]),
        "relu F-order 2-D": (lambda: fastrelu.relu(mf, out=mout), [mf, mout]),
        "relu read-only input": (lambda: fastrelu.relu(ro), [ro]),
        "relu 0-d": (lambda: fastrelu.relu(x0d), [x0d]),
        "relu empty": (lambda: fastrelu.relu(xe), [xe]),
        "relu list": (lambda: fastrelu.relu(lst), [lst]),
        "relu scalar": (lambda: fastrelu.relu(-3), []),
        "relu uint8": (lambda: fastrelu.relu(xu8), [xu8]),
        "relu partial overlap": (lambda: fastrelu.relu(mutable[1:], out=mutable[:-1]), [mutable]),
        "relu_ C": (lambda: fastrelu.relu_(mutable), [mutable]),
        "relu_ strided": (lambda: fastrelu.relu_(mutable_s), [mutable_s]),
        "relu_ 0-d": (lambda: fastrelu.relu_(x0d.copy()), [x0d]),
        "relu_grad C": (lambda: fastrelu.relu_grad(x), [x]),
        "relu_grad C out": (lambda: fastrelu.relu_grad(x, out=out), [x, out]),
        "relu_grad strided": (lambda: fastrelu.relu_grad(xs, out=outs), [xs, outs]),
        "relu_grad list": (lambda: fastrelu.relu_grad(lst), [lst]),
        "relu_backward C": (lambda: fastrelu.relu_backward(g, x), [g, x]),
        "relu_backward C out": (lambda: fastrelu.relu_backward(g, x, out=out), [g, x, out]),
        "relu_backward large": (lambda: fastrelu.relu_backward(bigg, big, out=bigout),
                                [bigg, big, bigout]),
        "relu_backward strided": (lambda: fastrelu.relu_backward(gs, xs), [gs, xs]),
        "relu_backward mixed out": (lambda: fastrelu.relu_backward(gs, xs, out=outs),
                                    [gs, xs, outs]),
        "relu_backward lists": (lambda: fastrelu.relu_backward(lst, lst), [lst]),
        "relu_backward out=x": (lambda: fastrelu.relu_backward(g, mutable, out=mutable),
                                [g, mutable]),
        "ufunc_relu": (lambda: ufuncs.relu(x, out=out), [x, out]),
        "ufunc_relu_grad": (lambda: ufuncs.relu_grad(xs), [xs]),
        "ufunc_relu_backward": (lambda: ufuncs.relu_backward(g, x), [g, x]),
        "get/set_num_threads": (lambda: fastrelu.set_num_threads(
            fastrelu.set_num_threads(fastrelu.get_num_threads())), []),
        "num_threads()": (lambda: fastrelu.num_threads(1).__enter__() or
                          fastrelu.set_num_threads(None), []),
        "show_config": (lambda: (fastrelu.show_config(file=sink), sink.seek(0), sink.truncate()),
                        [sink]),
        "thresholds": (lambda: _engine.thresholds(**_engine.thresholds()), []),
        "use_isa": (lambda: _engine.use_isa(_engine.use_isa(_engine.ISA)), []),
    }


def error_cases():
    """name -> (callable, expected exception, objects whose refcounts must not change)."""
    x, g, big, bigg, m = _arrays()
    out = np.empty_like(x)
    ro = _readonly(x)
    xb = np.zeros(10, bool)
    xc = np.zeros(10, np.complex64)
    xo = np.array([1, -1], dtype=object)
    xs = x[::2]
    xi = x.astype(np.int32)
    lst = [1.0, -2.0]
    return {
        "relu bool": (lambda: fastrelu.relu(xb), TypeError, [xb]),
        "relu complex": (lambda: fastrelu.relu(xc), TypeError, [xc]),
        "relu object": (lambda: fastrelu.relu(xo), TypeError, [xo]),
        "relu str": (lambda: fastrelu.relu("abc"), TypeError, []),
        "relu out wrong shape": (lambda: fastrelu.relu(x, out=out[1:]), ValueError, [x, out]),
        "relu out wrong dtype": (lambda: fastrelu.relu(x, out=xi), TypeError, [x, xi]),
        "relu out list": (lambda: fastrelu.relu(x, out=lst), TypeError, [x, lst]),
        "relu out read-only": (lambda: fastrelu.relu(x, out=ro), ValueError, [x, ro]),
        "relu strided out read-only": (lambda: fastrelu.relu(xs, out=ro[::2]), ValueError,
                                       [xs, ro]),
        "relu_ read-only": (lambda: fastrelu.relu_(ro), ValueError, [ro]),
        "relu_ list": (lambda: fastrelu.relu_(lst), TypeError, [lst]),
        "relu_ bool": (lambda: fastrelu.relu_(xb), TypeError, [xb]),
        "relu_grad complex": (lambda: fastrelu.relu_grad(xc), TypeError, [xc]),
        "relu_grad out wrong shape": (lambda: fastrelu.relu_grad(x, out=out[:3]), ValueError,
                                      [x, out]),
        "relu_grad out wrong dtype": (lambda: fastrelu.relu_grad(x, out=xi), TypeError, [x, xi]),
        "relu_backward dtype mismatch": (lambda: fastrelu.relu_backward(g, xi), TypeError,
                                         [g, xi]),
        "relu_backward shape mismatch": (lambda: fastrelu.relu_backward(g[1:], x), ValueError,
                                         [g, x]),
        "relu_backward bool": (lambda: fastrelu.relu_backward(xb, xb), TypeError, [xb]),
        "relu_backward out read-only": (lambda: fastrelu.relu_backward(g, x, out=ro), ValueError,
                                        [g, x, ro]),
        "relu_backward out wrong dtype": (lambda: fastrelu.relu_backward(g, x, out=xi),
                                          TypeError, [g, x, xi]),
        "set_num_threads(0)": (lambda: fastrelu.set_num_threads(0), ValueError, []),
        "set_num_threads('2')": (lambda: fastrelu.set_num_threads("2"), TypeError, []),
        "use_isa bad": (lambda: _engine.use_isa("sse9"), ValueError, []),
    }


def _refcounts(objs):
    """Reference counts of the objects, their dtypes and their types."""
    tracked = []
    for o in objs:
        tracked += [o, type(o)]
        if isinstance(o, np.ndarray):
            tracked.append(o.dtype)
    return [sys.getrefcount(o) for o in tracked]


def _traced(domain):
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.DomainFilter(inclusive=True, domain=domain)])
    return sum(stat.size for stat in snap.statistics("filename"))


def _measure(fn, iterations):
    """Bytes gained in Python's and NumPy's tracemalloc domains over ``iterations`` calls."""
    for _ in range(WARMUP):
        fn()
    gc.collect()
    before = (_traced(0), _traced(NUMPY_DOMAIN))
    for _ in range(iterations):
        fn()
    gc.collect()
    after = (_traced(0), _traced(NUMPY_DOMAIN))
    return after[0] - before[0], after[1] - before[1]


@pytest.fixture(scope="module")
def tracing():
    previous_threads = fastrelu.set_num_threads(fastrelu.get_num_threads())
    thresholds = _engine.thresholds()
    isa = _engine.ISA
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()
        fastrelu.set_num_threads(previous_threads)
        _engine.thresholds(**thresholds)
        _engine.use_isa(isa)


def test_numpy_domain_is_traced(tracing):
    """The measurement sees NumPy data buffers (otherwise the test proves nothing)."""
    keep = []
    base = _traced(NUMPY_DOMAIN)
    for _ in range(10):
        keep.append(fastrelu.relu(np.ones(1000, np.float64)))
    assert _traced(NUMPY_DOMAIN) - base >= 10 * 8000


SUCCESS = success_cases()
ERRORS = error_cases()


def _check(name, call, objs):
    """Refcounts unchanged and no growth. Counts of shared objects (the ndarray
    type, dtype singletons) also move when unrelated garbage is collected or
    another thread works, so a failing measurement is repeated once: a real leak
    shows up both times."""
    call()
    problems = []
    for _ in range(2):
        gc.collect()
        counts = _refcounts(objs)
        grown_py, grown_np = _measure(call, ITERATIONS)
        problems = []
        if _refcounts(objs) != counts:
            problems.append(f"{name}: reference counts changed: {counts} -> {_refcounts(objs)}")
        if grown_py > SLACK_BYTES:
            problems.append(f"{name}: Python allocations grew by {grown_py} bytes")
        if grown_np > SLACK_BYTES:
            problems.append(f"{name}: NumPy data grew by {grown_np} bytes")
        if not problems:
            return
    raise AssertionError("; ".join(problems))


@pytest.mark.parametrize("name", list(SUCCESS))
def test_success_path_does_not_leak(tracing, name):
    fn, objs = SUCCESS[name]
    _check(name, fn, objs)


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_path_does_not_leak(tracing, name):
    fn, exc, objs = ERRORS[name]

    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError(f"{name}: no {exc.__name__}")

    _check(name, call, objs)


def test_results_are_released(tracing):
    """A fresh result holds no extra reference (it is freed with its last one)."""
    x = np.ones(100, np.float32)
    # (plain statements: pytest's assertion rewriting would keep extra references)
    counts = [sys.getrefcount(np.empty(3)),
              sys.getrefcount(fastrelu.relu(x)),
              sys.getrefcount(fastrelu.relu(x[::2])),
              sys.getrefcount(fastrelu.relu([1.0, 2.0])),
              sys.getrefcount(fastrelu.relu_grad(x)),
              sys.getrefcount(fastrelu.relu_backward(x, x)),
              sys.getrefcount(fastrelu.relu_backward(x[::2], x[::2]))]
    assert counts == counts[:1] * len(counts)


def test_measurement_detects_leaks(tracing):
    """The harness itself: a leak of one small object or one 16-byte NumPy
    buffer per call is far above the slack."""
    keep = []
    grown_py, _ = _measure(lambda: keep.append(object()), ITERATIONS)
    assert grown_py > SLACK_BYTES
    keep.clear()
    _, grown_np = _measure(lambda: keep.append(np.empty(2)), ITERATIONS)
    assert grown_np > SLACK_BYTES
    x = np.ones(3)
    with pytest.raises(AssertionError, match="reference counts changed"):
        _check("reference leak", lambda: keep.append(x), [x])
