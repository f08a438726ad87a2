"""Concurrency: many Python threads calling fastrelu at once, the GIL released
during large kernels, and the thread-count setters used from several threads.
"""
import sys
import threading
import time

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
from fastrelu import _engine
from reliability_helpers import (assert_bits, random_bits, ref_backward, ref_grad,
                                 ref_relu)

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
    above the parallel threshold; contiguous and strided) and their oracles."""
    rng = np.random.default_rng(11)
    cases = []
    for dt, n in (("float32", 1000), ("float32", 150_000), ("int8", 70_000),
                  ("float64", 40_000), ("int16", 3), ("uint32", 100_001), ("float16", 9000)):
        x, g = random_bits(rng, dt, n), random_bits(rng, dt, n)
        x.flags.writeable = g.flags.writeable = False
        for xv, gv in ((x, g), (x[::3], g[::-3])):
            cases.append((xv, gv, ref_relu(xv), ref_grad(xv), ref_backward(gv, xv)))
    return cases


def test_eight_threads_every_function(shared):
    """8 threads x every function x every shared input, many rounds; each thread
    writes only its own outputs. Every result equals the oracle, inputs untouched."""
    before = [(x.tobytes(), g.tobytes()) for x, g, *_ in shared]
    rounds = 100

    def work(i):
        outs = [(np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)) for x, *_ in shared]
        for r in range(rounds):
            for (x, g, er, eg, eb), (o1, o2) in zip(shared, outs):
                k = (i + r) % 6
                if k == 0:
                    assert_bits(fastrelu.relu(x), er, "relu")
                    assert_bits(fastrelu.relu_grad(x, out=o1), eg, "relu_grad out=")
                elif k == 1:
                    assert_bits(fastrelu.relu(x, out=o1), er, "relu out=")
                    assert_bits(fastrelu.relu_backward(g, x), eb, "relu_backward")
                elif k == 2:
                    o1[...] = x
                    assert_bits(fastrelu.relu_(o1), er, "relu_")
                    assert_bits(fastrelu.relu_backward(g, x, out=o2), eb, "relu_backward out=")
                elif k == 3:
                    assert_bits(fastrelu.relu_grad(x), eg, "relu_grad")
                    o2[...] = g
                    assert_bits(fastrelu.relu_backward(o2, x, out=o2), eb, "backward out=g")
                elif k == 4:
                    assert_bits(ufuncs.relu(x), er, "ufunc_relu")
                    assert_bits(ufuncs.relu_backward(g, x, out=o2), eb, "ufunc backward")
                else:
                    assert_bits(ufuncs.relu_grad(x, out=o1), eg, "ufunc_relu_grad")
                    assert_bits(fastrelu.relu(list(x[:5])), er[:5], "relu list")

    t0 = time.perf_counter()
    _run_threads(work)
    assert [(x.tobytes(), g.tobytes()) for x, g, *_ in shared] == before
    assert time.perf_counter() - t0 < 60


def test_eight_threads_with_low_thresholds(shared):
    """The same race on the thread team and the streaming path with thresholds at 0."""
    previous = _engine.thresholds(nogil_min_bytes=0, parallel_min_bytes=1, stream_min_bytes=0)
    try:
        def work(i):
            for _ in range(20):
                for x, g, er, eg, eb in shared:
                    assert_bits(fastrelu.relu(x), er, "relu")
                    assert_bits(fastrelu.relu_backward(g, x), eb, "relu_backward")
                    assert_bits(fastrelu.relu_grad(x), eg, "relu_grad")
        _run_threads(work)
    finally:
        _engine.thresholds(**previous)


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


def test_gil_released_during_large_kernels():
    """A Python thread keeps counting while relu runs on 50M float32 elements,
    with the default threads and with 1 thread; for comparison, a C call of
    similar length that holds the GIL (bytes.replace) lets it make next to no
    progress, and an idle main thread (sleep) gives the full rate."""
    n = 50_000_000
    x = np.random.default_rng(0).integers(-1000, 1000, n, dtype=np.int32).astype(np.float32)
    out = np.empty_like(x)
    blob = b"ab" * (n * 2)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)      # a GIL holder is asked to yield after 1 ms
    try:
        idle = _counter_progress(lambda: time.sleep(0.05), 0.3)
        held = _counter_progress(lambda: blob.replace(b"a", b"c"), 0.6)
        with fastrelu.num_threads(1):
            one = _counter_progress(lambda: fastrelu.relu(x, out=out), 0.8)
        default = _counter_progress(lambda: fastrelu.relu(x, out=out), 0.8)
    finally:
        sys.setswitchinterval(interval)
    rates = f"idle {idle:.3g}/s, GIL held {held:.3g}/s, relu 1 thread {one:.3g}/s, " \
            f"relu default threads {default:.3g}/s"
    assert held < 0.1 * idle, f"the control does not hold the GIL? {rates}"
    # with a core to spare the counter runs at nearly its idle rate; even with
    # every core busy it gets a fair share
    assert one > 0.2 * idle and one > 4 * held, f"GIL not released (1 thread): {rates}"
    assert default > 0.1 * idle and default > 2 * held, f"GIL not released: {rates}"
    assert_bits(out, np.maximum(x, 0), "relu 50M")      # no NaN or -0.0 in x
    print(rates)


def test_thread_count_setters_from_many_threads():
    """set_num_threads / num_threads / get_num_threads hammered from 8 threads
    while relu runs on an array above the parallel threshold: no crash, valid
    values throughout, the right result, and a valid setting afterwards."""
    x = random_bits(np.random.default_rng(5), "float32", 300_000)
    expected = ref_relu(x)
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
                        assert_bits(fastrelu.relu(x), expected, "relu")
            elif choice == 2:
                fastrelu.set_num_threads(None)
            else:
                assert fastrelu.get_num_threads() >= 1
                if k % 10 == 3:
                    assert_bits(fastrelu.relu(x), expected, "relu")

    try:
        _run_threads(work)
        value = fastrelu.get_num_threads()
        assert isinstance(value, int) and value >= 1
        setting = fastrelu.set_num_threads(2)
        assert setting is None or 1 <= setting <= 4
        assert fastrelu.get_num_threads() == 2
        assert_bits(fastrelu.relu(x), expected, "relu after")
    finally:
        fastrelu.set_num_threads(original)
    assert fastrelu.set_num_threads(original) == original
