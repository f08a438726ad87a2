"""Threads: results are identical for every thread count for every operation
of the registry, also while another thread changes the count and with more
threads than cores; the thread setting API (set_num_threads /
get_num_threads / num_threads) returns, restores and validates as
documented. (Many Python threads calling at once: test_concurrency.py.)"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine
from helpers import OPS, assert_same, call, call_inplace, expected, op_dtype_params, op_id, \
    param_sets, readonly


def threaded_elements(dtype, per_thread=2):
    """Elements of ``dtype`` for which the shipped thresholds give every one of
    3 threads ``per_thread`` times the parallel threshold's share."""
    p = _engine.thresholds()["parallel_min_bytes"]
    return 3 * per_thread * p // np.dtype(dtype).itemsize + 13


@pytest.fixture(autouse=True)
def restore_thread_setting():
    """Every test starts from the default setting (None) and puts the old one back."""
    previous = fastrelu.set_num_threads(None)
    yield
    fastrelu.set_num_threads(previous)


def test_concurrent_calls_while_changing_thread_count(big_values):
    """Calls of every op stay correct while another thread keeps changing the
    thread count."""
    n = threaded_elements("float64")
    x = readonly(big_values("float64", n))
    cases = [(op, (x[::-1], x)[-op.arity:], param_sets(op, "float64")[0]) for op in OPS]
    wants = [expected(op, arrays, params) for op, arrays, params in cases]
    stop = threading.Event()

    def changer():
        n = 0
        while not stop.is_set():
            fastrelu.set_num_threads(1 + n % 3)
            n += 1

    t = threading.Thread(target=changer)
    t.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda i: call(*cases[i % len(cases)]), range(3 * len(cases)))
            for i, r in enumerate(results):
                assert_same(r, wants[i % len(cases)])
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("op, dtype", op_dtype_params(dtypes=("float16", "float64", "int8")),
                         ids=op_id)
def test_results_identical_for_one_two_and_three_threads(op, dtype, big_values):
    """Every op on arrays above the parallel threshold (contiguous, strided, in
    place): the same bits with 1, 2 and 3 threads, and equal to the reference."""
    n = threaded_elements(dtype)
    arrays = (big_values(dtype, n)[::-1].copy(), big_values(dtype, n))[-op.arity:]
    strided = tuple(a[::2] for a in arrays)
    params = param_sets(op, dtype)[0]
    results = {}
    for threads in (1, 2, 3):
        with fastrelu.num_threads(threads):
            assert fastrelu.get_num_threads() == min(threads, _engine.THREAD_CAP)
            y = arrays[0].copy()
            results[threads] = (call(op, arrays, params), call(op, strided, params),
                                call_inplace(op, y, params) if op.inplace
                                else call(op, (y,) + arrays[1:], params, out=y))
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert_same(b, a)
    assert_same(results[1][0], expected(op, arrays, params))
    assert_same(results[1][1], expected(op, strided, params))
    assert_same(results[1][2], results[1][0])


def test_set_num_threads_returns_previous_and_none_restores():
    """set_num_threads returns the previous setting (None = follow OpenMP); None restores
    the default count."""
    default = fastrelu.get_num_threads()
    assert isinstance(default, int) and default >= 1
    assert fastrelu.set_num_threads(3) is None
    assert fastrelu.get_num_threads() == min(3, _engine.THREAD_CAP)
    assert fastrelu.set_num_threads(1) == 3
    assert fastrelu.get_num_threads() == 1
    assert fastrelu.set_num_threads(None) == 1
    assert fastrelu.get_num_threads() == default
    assert fastrelu.set_num_threads(None) is None
    assert fastrelu.set_num_threads(np.int64(2)) is None     # any integer type
    assert fastrelu.get_num_threads() == 2


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_more_threads_than_cores_is_correct(op, big_values):
    """set_num_threads(16) is used as the CPUs available (THREAD_CAP) and
    still computes the right bits."""
    n = threaded_elements("float32", per_thread=6)
    arrays = (big_values("float32", n)[::-1].copy(), big_values("float32", n))[-op.arity:]
    params = param_sets(op, "float32")[0]
    fastrelu.set_num_threads(16)
    assert fastrelu.get_num_threads() == min(16, _engine.THREAD_CAP)
    assert_same(call(op, arrays, params), expected(op, arrays, params))
    reversed_ = tuple(a[::-1] for a in arrays)
    assert_same(call(op, reversed_, params), expected(op, reversed_, params))


def test_num_threads_context_manager_restores():
    """num_threads(n) sets n inside the block and restores the previous setting after,
    also when nested and with None."""
    default = fastrelu.get_num_threads()
    with fastrelu.num_threads(1):
        assert fastrelu.get_num_threads() == 1
        with fastrelu.num_threads(3):
            assert fastrelu.get_num_threads() == min(3, _engine.THREAD_CAP)
            with fastrelu.num_threads(None):
                assert fastrelu.get_num_threads() == default
            assert fastrelu.get_num_threads() == min(3, _engine.THREAD_CAP)
        assert fastrelu.get_num_threads() == 1
    assert fastrelu.get_num_threads() == default
    assert fastrelu.set_num_threads(None) is None    # the setting itself was restored


def test_num_threads_context_manager_restores_on_exception():
    """An exception inside the block propagates and the setting is restored."""
    fastrelu.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"):
        with fastrelu.num_threads(1):
            assert fastrelu.get_num_threads() == 1
            raise RuntimeError("boom")
    assert fastrelu.get_num_threads() == 2
    assert fastrelu.set_num_threads(None) == 2


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (-(2 ** 31), ValueError),
                                      ("2", TypeError), (2.0, TypeError), (2.5, TypeError),
                                      (True, TypeError), ([2], TypeError)])
def test_set_num_threads_invalid(bad, exc):
    """0 and negatives: ValueError; non-integers (str, float, bool): TypeError; the setting
    is unchanged; num_threads(bad) raises the same before entering the block."""
    fastrelu.set_num_threads(2)
    with pytest.raises(exc):
        fastrelu.set_num_threads(bad)
    assert fastrelu.get_num_threads() == 2
    entered = False
    with pytest.raises(exc):
        with fastrelu.num_threads(bad):
            entered = True
    assert not entered
    assert fastrelu.get_num_threads() == 2


@pytest.mark.parametrize("pause", [0.0, 0.002])
def test_loops_and_pauses_give_the_reference(pause):
    """The shipped policy: calls from 256 KiB to 4 MiB are threaded only in a
    loop (within the spin window of the previous call), after a pause they run
    on one thread, and larger ones always use the team; every mix gives the
    reference bits."""
    import time
    thresholds = _engine.thresholds()
    assert thresholds["parallel_min_bytes"] < thresholds["cold_parallel_min_bytes"]
    assert thresholds["spin_ns"] > 0
    rng = np.random.default_rng(3)
    sizes = (300_000 // 4, 1_000_000 // 4, 5_000_000 // 4)       # bytes of float32
    inputs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    fastrelu.set_num_threads(2)
    for i in range(30):
        x = inputs[i % 3]
        assert_same(fastrelu.relu(x), np.where(x > 0, x, np.float32(0)))
        if pause:
            time.sleep(pause)


def test_thresholds_hook_sets_and_restores_the_policy():
    previous = _engine.thresholds(spin_ns=0, cold_parallel_min_bytes=1 << 20)
    try:
        now = _engine.thresholds()
        assert now["spin_ns"] == 0 and now["cold_parallel_min_bytes"] == 1 << 20
    finally:
        _engine.thresholds(**previous)
    assert _engine.thresholds() == previous
