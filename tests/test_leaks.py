"""No memory or reference leaks: every operation of the registry (its
function, in-place twin and ufunc), on success paths over several layouts
and on every documented error path, and the package's other functions, are
called a thousand times; the memory traced by tracemalloc (Python's domain
and NumPy's data domain, ``np.lib.tracemalloc_domain``) must not grow beyond
a small slack, and the reference counts of the inputs, ``out``, their dtypes
and types must be unchanged.
"""
import gc
import io
import sys
import tracemalloc

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine
from helpers import (OPS, call, call_inplace, call_ufunc, op_id, param_sets, readonly)

ITERATIONS = 1000
WARMUP = 100
SLACK_BYTES = 8 * 1024           # absolute slack over all iterations
NUMPY_DOMAIN = np.lib.tracemalloc_domain


def dtype_for(op):
    return "float32" if "float32" in op.dtype_names else op.dtype_names[0]


def success_calls(op):
    """(callables, objects whose refcounts must not change): ``op`` on every
    path -- the fast path (contiguous, out=, large enough to release the GIL
    and use the threads), the general path (strided, byte-swapped, Fortran,
    read-only, 0-d, empty, lists, scalars, partial overlap), in place, the
    ufunc -- with its parameters by position and by name."""
    rng = np.random.default_rng(3)
    dt = dtype_for(op)
    params = param_sets(op, dt)[0]

    def arrays(n):
        return tuple(rng.standard_normal(n).astype(dt) for _ in op.inputs)
    c, big, m = arrays(257), arrays(40_000), tuple(a.reshape(17, 9) for a in arrays(153))
    strided = tuple(a[::2] for a in c)
    swapped = tuple(a.astype(a.dtype.newbyteorder()) for a in c)
    fortran = tuple(np.asfortranarray(a) for a in m)
    ro = tuple(readonly(a) for a in c)
    zero_d = tuple(np.array(-2.5, dt) for _ in op.inputs)
    empty = tuple(np.empty((0, 3), dt) for _ in op.inputs)
    lists = ([-1.0, 2.0, float("nan")],) * op.arity
    out, bigout, sout = np.empty(257, dt), np.empty(40_000, dt), np.empty(129, dt)
    mout = np.empty((17, 9), dt)
    mutable = np.empty(258, dt)
    calls = [
        lambda: call(op, c, params),
        lambda: call(op, c, params, out=out),
        lambda: call(op, c, params, keywords=True),
        lambda: call(op, big, params, out=bigout),
        lambda: call(op, strided, params),
        lambda: call(op, strided, params, out=sout),
        lambda: call(op, swapped, params),
        lambda: call(op, fortran, params, out=mout),
        lambda: call(op, ro, params),
        lambda: call(op, zero_d, params),
        lambda: call(op, empty, params),
        lambda: call(op, lists, params),
        lambda: call(op, (-3.0,) * op.arity, params),
        lambda: call(op, (mutable[1:],) * op.arity, params, out=mutable[:-1]),
        lambda: call_ufunc(op, c, params, out=out),
        lambda: call_ufunc(op, strided, params),
    ]
    if op.inplace:
        calls += [lambda: call_inplace(op, mutable, params),
                  lambda: call_inplace(op, mutable[::2], params),
                  lambda: call_inplace(op, zero_d[0].copy(), params)]
    objects = [*c, *big, *strided, *swapped, *fortran, *ro, *zero_d, *empty, lists[0], out,
               bigout, sout, mout, mutable]
    return calls, objects


def error_calls(op):
    """(callables, objects whose refcounts must not change): every documented
    error of ``op``, each with the exception type it must raise."""
    dt = dtype_for(op)
    params = param_sets(op, dt)[0]
    x = np.linspace(-2, 2, 16).astype(dt)
    xs = (x,) * op.arity
    ro = readonly(x)
    other = np.zeros(16, "int32" if dt != "int32" else "int16")
    bad_dtype = np.zeros(10, bool), np.zeros(10, np.complex64), np.array([1, -1], object)
    lst = [1.0, -2.0]
    calls = [
        (lambda: call(op, (bad_dtype[0],) * op.arity, params), TypeError),
        (lambda: call(op, (bad_dtype[1],) * op.arity, params), TypeError),
        (lambda: call(op, (bad_dtype[2],) * op.arity, params), TypeError),
        (lambda: call(op, ("abc",) * op.arity, params), TypeError),
        (lambda: call(op, xs, params, out=x[1:].copy()), ValueError),
        (lambda: call(op, xs, params, out=other), TypeError),
        (lambda: call(op, xs, params, out=lst), TypeError),
        (lambda: call(op, xs, params, out=ro), ValueError),
        (lambda: call(op, tuple(a[::2] for a in xs), params, out=ro[::2]), ValueError),
    ]
    if op.inplace:
        calls += [(lambda: call_inplace(op, ro, params), ValueError),
                  (lambda: call_inplace(op, lst, params), TypeError),
                  (lambda: call_inplace(op, bad_dtype[0], params), TypeError)]
    if op.arity == 2:
        calls += [(lambda: call(op, (x, other), params), TypeError),
                  (lambda: call(op, (x[1:], x), params), ValueError)]
    for index in range(len(op.params)):
        bad = params[:index] + ("1",) + params[index + 1:]
        calls.append((lambda bad=bad: call(op, xs, bad), TypeError))
        if op.params[index].kind != "slope":
            nan = params[:index] + (np.nan,) + params[index + 1:]
            xi = (np.arange(-3, 5, dtype=np.int8),) * op.arity
            calls.append((lambda nan=nan, xi=xi: call(op, xi, nan), ValueError))
    return calls, [x, ro, other, *bad_dtype, lst]


def other_calls():
    """name -> (callable, objects): the package's functions besides the ops."""
    sink = io.StringIO()
    return {
        "get/set_num_threads": (lambda: fastrelu.set_num_threads(
            fastrelu.set_num_threads(fastrelu.get_num_threads())), []),
        "num_threads()": (lambda: fastrelu.num_threads(1).__enter__() or
                          fastrelu.set_num_threads(None), []),
        "show_config": (lambda: (fastrelu.show_config(file=sink), sink.seek(0),
                                 sink.truncate()), [sink]),
        "thresholds": (lambda: _engine.thresholds(**_engine.thresholds()), []),
        "use_isa": (lambda: _engine.use_isa(_engine.use_isa(_engine.ISA)), []),
    }


def other_errors():
    return {
        "set_num_threads(0)": (lambda: fastrelu.set_num_threads(0), ValueError),
        "set_num_threads('2')": (lambda: fastrelu.set_num_threads("2"), TypeError),
        "use_isa bad": (lambda: _engine.use_isa("sse9"), ValueError),
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
    for op in OPS:
        params = param_sets(op, "float64")[0]
        keep.append(call(op, (np.ones(1000, np.float64),) * op.arity, params))
    assert _traced(NUMPY_DOMAIN) - base >= len(OPS) * 8000


def _check(name, fn, objs):
    """Refcounts unchanged and no growth. Counts of shared objects (the ndarray
    type, dtype singletons) also move when unrelated garbage is collected or
    another thread works, so a failing measurement is repeated once: a real leak
    shows up both times."""
    fn()
    problems = []
    for _ in range(2):
        gc.collect()
        counts = _refcounts(objs)
        grown_py, grown_np = _measure(fn, ITERATIONS)
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


def _all(calls):
    def run():
        for fn in calls:
            fn()
    return run


def _raising(fn, exc, name):
    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError(f"{name}: no {exc.__name__}")
    return call


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_success_paths_do_not_leak(tracing, op):
    calls, objects = success_calls(op)
    _check(f"{op.name} success paths", _all(calls), objects)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_error_paths_do_not_leak(tracing, op):
    calls, objects = error_calls(op)
    _check(f"{op.name} error paths",
           _all([_raising(fn, exc, f"{op.name} error path {i}")
                 for i, (fn, exc) in enumerate(calls)]), objects)


@pytest.mark.parametrize("name", list(other_calls()))
def test_other_functions_do_not_leak(tracing, name):
    fn, objects = other_calls()[name]
    _check(name, fn, objects)


@pytest.mark.parametrize("name", list(other_errors()))
def test_other_errors_do_not_leak(tracing, name):
    fn, exc = other_errors()[name]
    _check(name, _raising(fn, exc, name), [])


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_results_are_released(tracing, op):
    """A fresh result holds no extra reference (it is freed with its last one)."""
    x = np.ones(100, dtype_for(op))
    params = param_sets(op, dtype_for(op))[0]
    xs, ss = (x,) * op.arity, (x[::2],) * op.arity
    lst = ([1.0, 2.0],) * op.arity
    # (plain statements: pytest's assertion rewriting would keep extra references)
    counts = [sys.getrefcount(np.empty(3)),
              sys.getrefcount(call(op, xs, params)),
              sys.getrefcount(call(op, ss, params)),
              sys.getrefcount(call(op, lst, params)),
              sys.getrefcount(call_ufunc(op, xs, params))]
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
