"""Concurrency: many Python threads calling every operation of the registry at
once (on the small, GIL-released, threaded and streaming paths), the GIL
released during large kernels of every operation, and the thread-count
setters used from several threads.
"""
import sys
import threading
import time

import numpy as np
import pytest

import fastrelu
from helpers import (OPS, assert_same, call, call_inplace, call_ufunc, expected, op_id,
                     param_sets, random_values)

N_THREADS = 8


def _run_threads(target, n=N_THREADS):
    """Run ``target(i)`` in n threads started together; re-raise the first failure."""
    errors = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:            # noqa: BLE001 - reported below
            errors.append((i, e))

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise AssertionError(f"{len(errors)} thread(s) failed; first: thread {errors[0][0]}") \
            from errors[0][1]


@pytest.fixture(scope="module")
def shared():
    """Read-only inputs shared by all threads (small, around the no-GIL threshold,
    above the parallel threshold; contiguous and strided), with, for every op
    that takes their dtype, its parameters and the reference result."""
    rng = np.random.default_rng(11)
    cases = []
    for dt, n in (("float32", 1000), ("float32", 150_000), ("int8", 70_000),
                  ("float64", 40_000), ("int16", 3), ("uint32", 100_001), ("float16", 9000)):
        g, x = random_values(rng, dt, n), random_values(rng, dt, n)
        g.flags.writeable = x.flags.writeable = False
        for gv, xv in ((g, x), (g[::-3], x[::3])):
            ops = []
            for op in [op for op in OPS if dt in op.dtype_names]:
                params = param_sets(op, dt)[0]
                arrays = (gv, xv)[-op.arity:]
                ops.append((op, params, arrays, expected(op, arrays, params)))
            cases.append(ops)
    return cases


def check_case(op, params, arrays, want, k, outs):
    """One call of ``op`` in the way ``k`` picks, into this thread's ``outs``."""
    o1, o2 = outs
    if k == 0:
        assert_same(call(op, arrays, params), want, op.name)
    elif k == 1:
        assert call(op, arrays, params, out=o1) is o1
        assert_same(o1, want, f"{op.name} out=")
    elif k == 2:
        o1[...] = arrays[0]
        if op.inplace:
            assert call_inplace(op, o1, params) is o1
        else:
            assert call(op, (o1,) + arrays[1:], params, out=o1) is o1
        assert_same(o1, want, f"{op.name} in place")
    elif k == 3:
        assert call_ufunc(op, arrays, params, out=o2) is o2
        assert_same(o2, want, f"{op.name} ufunc")
    else:
        assert_same(call(op, tuple(list(a[:5]) for a in arrays), params), want[:5],
                    f"{op.name} lists")


def _work(shared, rounds):
    """A thread's work: ``rounds`` times every shared input, each with the op
    and the way of calling it that the thread and the round pick."""
    def work(i):
        outs = [tuple(np.empty(ops[0][3].shape, ops[0][3].dtype) for _ in range(2))
                for ops in shared]
        for r in range(rounds):
            for ops, out in zip(shared, outs):
                op, params, arrays, want = ops[(i + r) % len(ops)]
                check_case(op, params, arrays, want, (i + 3 * r) % 5, out)
    return work


def _inputs(shared):
    return [[tuple(a.tobytes() for a in arrays) for _, _, arrays, _ in ops] for ops in shared]


def test_eight_threads_every_op(shared):
    """8 threads x every op x every shared input x every way of calling, many
    rounds; each thread writes only its own outputs. Every result equals the
    reference, inputs untouched."""
    before = _inputs(shared)
    t0 = time.perf_counter()
    _run_threads(_work(shared, 40))
    assert _inputs(shared) == before
    assert time.perf_counter() - t0 < 60


@pytest.mark.usefixtures("threaded")
def test_eight_threads_with_low_thresholds(shared):
    """The same race on the thread team and the streaming path, with the
    thresholds at 0 (every call releases the GIL, asks for the team, streams)."""
    before = _inputs(shared)
    _run_threads(_work(shared, 12))
    assert _inputs(shared) == before


def _counter_progress(run, duration):
    """Counter increments per second made by a Python thread while ``run()`` is
    called repeatedly in the main thread for ~duration seconds, counting only the
    time spent inside ``run``."""
    stop = threading.Event()
    count = [0]

    def counter():
        c = 0
        while not stop.is_set():
            c += 1
            if c & 1023 == 0:
                count[0] = c
        count[0] = c

    t = threading.Thread(target=counter)
    t.start()
    time.sleep(0.05)
    inside = 0.0
    progress = 0
    t_end = time.perf_counter() + duration
    while time.perf_counter() < t_end:
        c0 = count[0]
        t0 = time.perf_counter()
        run()
        inside += time.perf_counter() - t0
        progress += count[0] - c0
    stop.set()
    t.join()
    return progress / inside


@pytest.fixture(scope="module")
def gil_rates():
    """Counter rates with an idle main thread (sleep) and while it runs a C call
    of similar length that holds the GIL (bytes.replace), for comparison."""
    blob = b"ab" * 40_000_000
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)      # a GIL holder is asked to yield after 1 ms
    try:
        idle = _counter_progress(lambda: time.sleep(0.05), 0.2)
        held = _counter_progress(lambda: blob.replace(b"a", b"c"), 0.4)
    finally:
        sys.setswitchinterval(interval)
    assert held < 0.1 * idle, \
        f"the control does not hold the GIL? idle {idle:.3g}/s, GIL held {held:.3g}/s"
    return idle, held


@pytest.fixture(scope="module")
def large_input():
    """20M float32 elements (integers, so no NaN or -0.0), read-only."""
    x = np.random.default_rng(0).integers(-1000, 1000, 20_000_000,
                                          dtype=np.int32).astype(np.float32)
    x.flags.writeable = False
    return x


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_gil_released_during_large_kernels(op, gil_rates, large_input):
    """A Python thread keeps counting while ``op`` runs on 20M float32 elements,
    with 1 thread and with the default threads (for comparison, a GIL holder
    lets it make next to no progress, an idle main thread gives the full rate)."""
    idle, held = gil_rates
    x = large_input
    arrays = (x[::-1], x)[-op.arity:]
    params = param_sets(op, "float32")[0]
    out = np.empty_like(x)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        with fastrelu.num_threads(1):
            one = _counter_progress(lambda: call(op, arrays, params, out=out), 0.2)
        default = _counter_progress(lambda: call(op, arrays, params, out=out), 0.2)
    finally:
        sys.setswitchinterval(interval)
    rates = (f"idle {idle:.3g}/s, GIL held {held:.3g}/s, {op.name} 1 thread {one:.3g}/s, "
             f"{op.name} default threads {default:.3g}/s")
    # with a core to spare the counter runs at nearly its idle rate; even with
    # every core busy it gets a fair share
    assert one > 0.2 * idle and one > 4 * held, f"GIL not released (1 thread): {rates}"
    assert default > 0.1 * idle and default > 2 * held, f"GIL not released: {rates}"
    part = slice(0, 1_000_000)
    assert_same(out[part], expected(op, tuple(a[part] for a in arrays), params))


def test_thread_count_setters_from_many_threads():
    """set_num_threads / num_threads / get_num_threads hammered from 8 threads
    while every op in turn runs on an array above the parallel threshold: no
    crash, valid values throughout, the right results, and a valid setting
    afterwards."""
    x = random_values(np.random.default_rng(5), "float32", 300_000)
    arrays = {op.name: (x[::-1].copy(), x)[-op.arity:] for op in OPS}
    params = {op.name: param_sets(op, "float32")[0] for op in OPS}
    wants = {op.name: expected(op, arrays[op.name], params[op.name]) for op in OPS}

    def check(k):
        op = OPS[k % len(OPS)]
        assert_same(call(op, arrays[op.name], params[op.name]), wants[op.name], op.name)
    original = fastrelu.set_num_threads(None)
    fastrelu.set_num_threads(original)

    def work(i):
        rng = np.random.default_rng(i)
        for k in range(1000):
            n = int(rng.integers(1, 5))
            choice = (i + k) % 4
            if choice == 0:
                prev = fastrelu.set_num_threads(n)
                assert prev is None or (isinstance(prev, int) and prev >= 1)
            elif choice == 1:
                with fastrelu.num_threads(n):
                    assert fastrelu.get_num_threads() >= 1
                    if k % 10 == 1:
                        check(k // 10)
            elif choice == 2:
                fastrelu.set_num_threads(None)
            else:
                assert fastrelu.get_num_threads() >= 1
                if k % 10 == 3:
                    check(k // 10)

    try:
        _run_threads(work)
        value = fastrelu.get_num_threads()
        assert isinstance(value, int) and value >= 1
        setting = fastrelu.set_num_threads(2)
        assert setting is None or 1 <= setting <= 4
        assert fastrelu.get_num_threads() == 2
        for k in range(len(OPS)):
            check(k)
    finally:
        fastrelu.set_num_threads(original)
    assert fastrelu.set_num_threads(original) == original
