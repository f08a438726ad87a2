"""Threads: concurrent calls from 8 Python threads on shared read-only inputs give
the oracle's bits; results are identical for every thread count; the thread
setting API (set_num_threads / get_num_threads / num_threads) returns, restores
and validates as documented."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastrelu
import oracle
from oracle import assert_same

BIG = 1 << 22     # 4M elements: above the threading (and, for 4-byte types, streaming) sizes


@pytest.fixture(autouse=True)
def restore_thread_setting():
    """Every test starts from the default setting (None) and puts the old one back."""
    previous = fastrelu.set_num_threads(None)
    yield
    fastrelu.set_num_threads(previous)


def _readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def test_concurrent_calls_from_eight_threads(big_values):
    """8 Python threads call relu / relu_grad / relu_backward / relu_ on shared read-only
    inputs (small, threaded-size and strided) into their own outputs; every result has
    the oracle's bits."""
    inputs = {
        "f32-big": _readonly(big_values("float32", 1 << 20)),
        "f64-mid": _readonly(big_values("float64", 300_001)),
        "i8-big": _readonly(big_values("int8", 3 << 20)),
        "f16-small": _readonly(big_values("float16", 1000)),
    }
    grads = {k: _readonly(big_values(v.dtype, v.size)[::-1]) for k, v in inputs.items()}
    expected = {k: (oracle.relu(v), oracle.relu_grad(v), oracle.relu_backward(grads[k], v),
                    oracle.relu(v[::3]))
                for k, v in inputs.items()}
    barrier = threading.Barrier(8)

    def worker(index):
        barrier.wait()
        for round_ in range(6):
            for key, x in inputs.items():
                g = grads[key]
                e_relu, e_grad, e_back, e_strided = expected[key]
                kind = (index + round_) % 5
                if kind == 0:
                    assert_same(fastrelu.relu(x), e_relu)
                elif kind == 1:
                    out = np.empty_like(x)
                    out.flags.writeable = True
                    assert fastrelu.relu_grad(x, out=out) is out
                    assert_same(out, e_grad)
                elif kind == 2:
                    assert_same(fastrelu.relu_backward(g, x), e_back)
                elif kind == 3:
                    y = x.copy()
                    assert fastrelu.relu_(y) is y
                    assert_same(y, e_relu)
                else:
                    assert_same(fastrelu.relu(x[::3]), e_strided)
        return index

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(worker, range(8))) == list(range(8))


def test_concurrent_calls_while_changing_thread_count(big_values):
    """Calls stay correct while another thread keeps changing the thread count."""
    x = _readonly(big_values("float64", 1 << 20))
    expected = oracle.relu(x)
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
            for r in pool.map(lambda _: fastrelu.relu(x), range(24)):
                assert_same(r, expected)
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("dtype", ["float16", "float64", "int8"])
def test_results_identical_for_one_and_two_threads(dtype, big_values):
    """relu, relu_grad, relu_backward (contiguous and strided) on 4M elements: the same
    bits with 1, 2 and 3 threads, and equal to the oracle."""
    x = big_values(dtype, BIG)
    g = big_values(dtype, BIG)[::-1].copy()
    results = {}
    for n in (1, 2, 3):
        with fastrelu.num_threads(n):
            assert fastrelu.get_num_threads() == n
            results[n] = (fastrelu.relu(x), fastrelu.relu_grad(x),
                          fastrelu.relu_backward(g, x), fastrelu.relu(x[::2]),
                          fastrelu.relu_(x.copy()))
    for n in (2, 3):
        for a, b in zip(results[1], results[n]):
            assert_same(b, a)
    assert_same(results[1][0], oracle.relu(x))
    assert_same(results[1][1], oracle.relu_grad(x))
    assert_same(results[1][2], oracle.relu_backward(g, x))
    assert_same(results[1][3], oracle.relu(x[::2]))


def test_set_num_threads_returns_previous_and_none_restores():
    """set_num_threads returns the previous setting (None = follow OpenMP); None restores
    the default count."""
    default = fastrelu.get_num_threads()
    assert isinstance(default, int) and default >= 1
    assert fastrelu.set_num_threads(3) is None
    assert fastrelu.get_num_threads() == 3
    assert fastrelu.set_num_threads(1) == 3
    assert fastrelu.get_num_threads() == 1
    assert fastrelu.set_num_threads(None) == 1
    assert fastrelu.get_num_threads() == default
    assert fastrelu.set_num_threads(None) is None
    assert fastrelu.set_num_threads(np.int64(2)) is None     # any integer type
    assert fastrelu.get_num_threads() == 2


def test_more_threads_than_cores_is_correct(big_values):
    """set_num_threads(16) on this machine still computes the right bits."""
    x = big_values("float32", 1 << 21)
    fastrelu.set_num_threads(16)
    assert fastrelu.get_num_threads() == 16
    assert_same(fastrelu.relu(x), oracle.relu(x))
    assert_same(fastrelu.relu_grad(x[::-1]), oracle.relu_grad(x[::-1]))


def test_num_threads_context_manager_restores():
    """num_threads(n) sets n inside the block and restores the previous setting after,
    also when nested and with None."""
    default = fastrelu.get_num_threads()
    with fastrelu.num_threads(1):
        assert fastrelu.get_num_threads() == 1
        with fastrelu.num_threads(3):
            assert fastrelu.get_num_threads() == 3
            with fastrelu.num_threads(None):
                assert fastrelu.get_num_threads() == default
            assert fastrelu.get_num_threads() == 3
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
