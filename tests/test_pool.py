"""The output pool (``fastrelu._memory``, ``set_pool_limit`` and friends).

Large outputs come from a NumPy memory handler that caches freed buffers.
These tests check that pool arrays are ordinary NumPy arrays, that a buffer is
never handed to two live arrays, that the cache stays within its limit under
threads, fork and failed allocations, and the public API's validation. What a
fresh process sees (the environment variable, peak memory) runs in one.
"""
import gc
import os
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import fastrelu
from fastrelu import _memory
from helpers import call, expected, make_inputs, op_dtype_params, op_id, param_sets

MIB = 1 << 20
N = 3 * MIB // 4 + 7          # float32 elements: a 3 MiB output, above the pool's minimum


@pytest.fixture(autouse=True)
def pool():
    """A known limit and an empty cache around every test (restored after)."""
    previous = fastrelu.set_pool_limit(256 * MIB)
    fastrelu.free_pool()
    yield
    gc.collect()
    fastrelu.set_pool_limit(previous)
    fastrelu.free_pool()


def signed(n, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


def counts():
    s = fastrelu.pool_stats()
    return s["hits"] + s["misses"]


def from_pool(f):
    """Run f(); True if it took an output from the pool."""
    before = counts()
    result = f()
    return result, counts() == before + 1


# --- pool arrays are ordinary arrays ------------------------------------------------------

@pytest.mark.parametrize(("op", "dtype"), op_dtype_params(dtypes=("float32", "int16")), ids=op_id)
def test_every_operation_allocates_from_the_pool(op, dtype, values):
    arrays = make_inputs(op, values, dtype, 2 * MIB // np.dtype(dtype).itemsize + 3)
    params = param_sets(op, dtype)[0]
    for _ in range(2):                   # a miss, then a hit of the same size
        result, pooled = from_pool(lambda: call(op, arrays, params))
        assert pooled
        np.testing.assert_array_equal(result, expected(op, arrays, params))
        assert result.flags.owndata and result.flags.writeable
        del result
    assert fastrelu.pool_stats()["hits"] >= 1


def test_general_path_and_layouts_allocate_from_the_pool():
    x = signed(2 * N).reshape(2, N)[:, ::2]          # not contiguous: the general path
    y, pooled = from_pool(lambda: fastrelu.relu(x))
    assert pooled
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    f = np.asfortranarray(signed(N - 1).reshape(-1, 3))
    z, pooled = from_pool(lambda: fastrelu.relu(f))
    assert pooled and z.flags.f_contiguous
    np.testing.assert_array_equal(z, np.maximum(f, 0))


def test_small_outputs_do_not_use_the_pool():
    x = signed(1000)
    _, pooled = from_pool(lambda: fastrelu.relu(x))
    assert not pooled
    assert fastrelu.pool_stats()["min_bytes"] == MIB


def test_pool_arrays_pickle_resize_and_serve_as_out():
    x = signed(N)
    y = fastrelu.relu(x)
    ref = np.maximum(x, 0)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(y)), ref)
    np.maximum(x, 1, out=y)                        # usable as NumPy's out=
    np.testing.assert_array_equal(y, np.maximum(x, 1))
    fastrelu.relu(x, out=y)
    y.resize(2 * N, refcheck=False)                # grows: the old values, then zeros
    np.testing.assert_array_equal(y[:N], ref)
    assert not y[N:].any()
    y.resize(1000, refcheck=False)                 # shrinks below the pool's minimum
    np.testing.assert_array_equal(y, ref[:1000])
    y.resize(N // 2 + 1, refcheck=False)
    np.testing.assert_array_equal(y[:1000], ref[:1000])
    del y
    assert fastrelu.pool_stats()["live_buffers"] == 0


def test_a_buffer_is_never_shared_by_two_live_arrays():
    x = signed(N)
    arrays = [fastrelu.relu(x) for _ in range(4)]
    del arrays[1]                                  # its buffer goes to the cache...
    arrays.append(fastrelu.relu(x))                # ...and out again
    pointers = [a.ctypes.data for a in arrays]
    assert len(set(pointers)) == len(arrays)
    for i, a in enumerate(arrays):
        a[:] = i
    for i, a in enumerate(arrays):
        assert (a == i).all()


def test_views_keep_the_buffer_alive():
    x = signed(N)
    y = fastrelu.relu(x)
    view = y[::3]
    snapshot = view.copy()
    del y
    assert fastrelu.pool_stats()["live_buffers"] == 1
    others = [fastrelu.relu(-x) for _ in range(3)]      # would reuse a freed buffer
    np.testing.assert_array_equal(view, snapshot)
    assert all(o.ctypes.data != view.base.ctypes.data for o in others)
    del view, others
    assert fastrelu.pool_stats()["live_buffers"] == 0


def test_arrays_outlive_free_pool():
    x = signed(N)
    keep = fastrelu.relu(x)
    cached = fastrelu.relu(x)
    del cached
    assert fastrelu.pool_stats()["cached_bytes"] >= N * 4
    assert fastrelu.free_pool() >= N * 4
    s = fastrelu.pool_stats()
    assert s["cached_bytes"] == 0 and s["cached_buffers"] == 0
    np.testing.assert_array_equal(keep, np.maximum(x, 0))
    del keep                                       # comes back to the (empty) cache
    assert fastrelu.pool_stats()["cached_buffers"] == 1


# --- the limit ---------------------------------------------------------------------------

def test_cache_never_exceeds_the_limit():
    fastrelu.set_pool_limit(10 * MIB)
    for n in (N, 2 * N, N // 2, 3 * N, N, 5 * N):        # up to 15 MiB: over the limit
        y = fastrelu.relu(signed(n))
        del y
        s = fastrelu.pool_stats()
        assert s["cached_bytes"] <= s["limit_bytes"] == 10 * MIB
    fastrelu.set_pool_limit(4 * MIB)                      # a lower limit evicts now
    assert fastrelu.pool_stats()["cached_bytes"] <= 4 * MIB


def test_limit_zero_turns_the_pool_off():
    x = signed(N)
    y = fastrelu.relu(x)
    assert fastrelu.set_pool_limit(0) == 256 * MIB
    assert fastrelu.get_pool_limit() == 0
    del y                                          # straight back to the OS
    assert fastrelu.pool_stats()["cached_bytes"] == 0
    z, pooled = from_pool(lambda: fastrelu.relu(x))
    assert not pooled                              # NumPy's allocator again
    np.testing.assert_array_equal(z, np.maximum(x, 0))


def test_set_pool_limit_returns_the_previous_and_none_restores_the_default():
    assert fastrelu.set_pool_limit(12345678) == 256 * MIB
    assert fastrelu.set_pool_limit(np.int64(3 * MIB)) == 12345678
    assert fastrelu.set_pool_limit(None) == 3 * MIB
    assert fastrelu.get_pool_limit() == _memory.limit_from_environment()


@pytest.mark.parametrize(("bad", "error"), [
    (-1, ValueError), (-(1 << 70), ValueError), (1.0, TypeError), (1e9, TypeError),
    ("1G", TypeError), (True, TypeError), (np.float64(4), TypeError), ([1], TypeError),
])
def test_bad_limits_raise_and_keep_the_previous(bad, error):
    with pytest.raises(error, match="set_pool_limit"):
        fastrelu.set_pool_limit(bad)
    assert fastrelu.get_pool_limit() == 256 * MIB


def test_default_limit_is_a_bounded_share_of_memory():
    default = _memory.default_limit()
    assert 0 < default <= _memory.DEFAULT_CAP == 1 << 30
    assert default <= _memory.available_memory() // 8


@pytest.mark.parametrize(("text", "nbytes"), [
    ("536870912", 536870912), ("512M", 512 * MIB), ("2g", 2 << 30), ("64KiB", 64 << 10),
    (" 1 G ", 1 << 30), ("0", 0), ("3MB", 3 * MIB),
])
def test_parse_size(text, nbytes):
    assert _memory.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.5G", "12X", "G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        _memory.parse_size(text)


def _fresh(code, env=None):
    """Run ``code`` in a fresh interpreter (plain ``import fastrelu``); its stdout."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(("value", "limit"), [("512M", 512 * MIB), ("0", 0),
                                              ("1073741824", 1 << 30)])
def test_environment_sets_the_default(value, limit):
    out = _fresh("import fastrelu; print(fastrelu.get_pool_limit()); "
                 "fastrelu.set_pool_limit(5); fastrelu.set_pool_limit(None); "
                 "print(fastrelu.get_pool_limit())", {"FASTRELU_POOL_LIMIT": value})
    assert out.split() == [str(limit), str(limit)]


def test_bad_environment_value_warns_and_uses_the_default():
    out = _fresh("import warnings, fastrelu, fastrelu._memory as m\n"
                 "print(fastrelu.get_pool_limit() == m.default_limit())",
                 {"FASTRELU_POOL_LIMIT": "lots", "PYTHONWARNINGS": "default"})
    assert out == "True"
    result = subprocess.run([sys.executable, "-W", "error", "-c", "import fastrelu"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "FASTRELU_POOL_LIMIT": "lots"})
    assert "FASTRELU_POOL_LIMIT ignored" in result.stderr


def test_show_config_reports_the_pool(capsys):
    fastrelu.show_config()
    out = capsys.readouterr().out
    assert "output pool" in out and f"limit {256 * MIB} bytes" in out


# --- memory -------------------------------------------------------------------------------

def test_peak_rss_of_an_allocating_loop_is_bounded():
    # x: 40 MB; each iteration holds the previous y while the next is written
    # (two live outputs), and the cache holds at most the limit (64 MiB).
    code = """
import resource, numpy as np, fastrelu
fastrelu.set_pool_limit(64 << 20)
x = np.random.default_rng(0).standard_normal(10_000_000).astype(np.float32)
y = np.maximum(x, 0) * 0          # touch the pages numpy's temporaries need
del y
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
for _ in range(30):
    y = fastrelu.relu(x)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
s = fastrelu.pool_stats()
print(peak - base, s["hits"], s["misses"], s["cached_bytes"])
"""
    grown, hits, misses, cached = map(int, _fresh(code).split())
    assert hits >= 28 and misses <= 2
    assert cached <= 64 << 20
    assert grown <= 2 * 40_000_000 + (64 << 20) + (16 << 20)


def test_allocation_failure_raises_memory_error_and_keeps_the_pool_consistent():
    y = fastrelu.relu(signed(N))
    del y                                              # one cached buffer
    huge = np.broadcast_to(np.float32(-1), (1 << 44,))  # a 64 TiB output
    with pytest.raises(MemoryError):
        fastrelu.relu(huge)
    s = fastrelu.pool_stats()
    assert s["live_buffers"] == 0 and s["cached_bytes"] <= s["limit_bytes"]
    x = signed(N)
    np.testing.assert_array_equal(fastrelu.relu(x), np.maximum(x, 0))


def test_exit_hook_releases_the_cache():
    y = fastrelu.relu(signed(N))
    del y
    assert fastrelu.pool_stats()["cached_bytes"] > 0
    _memory._at_exit()
    s = fastrelu.pool_stats()
    assert s["cached_bytes"] == 0 and s["limit_bytes"] == 0


# --- threads and fork ------------------------------------------------------------------------

def test_buffers_freed_from_another_thread():
    x = signed(N)
    arrays = [fastrelu.relu(x) for _ in range(3)]
    t = threading.Thread(target=arrays.clear)
    t.start()
    t.join()
    s = fastrelu.pool_stats()
    assert s["live_buffers"] == 0 and s["cached_buffers"] == 3


def test_hammer_from_eight_threads():
    fastrelu.set_pool_limit(24 * MIB)
    inputs = [signed(n, seed=n) for n in (N // 3, N, 2 * N, N + 4096, 3 * N // 2)]
    refs = [np.maximum(x, 0) for x in inputs]
    errors = []
    barrier = threading.Barrier(8)

    def work(seed):
        rng = np.random.default_rng(seed)
        held = []
        barrier.wait()
        try:
            for _ in range(60):
                i = int(rng.integers(len(inputs)))
                y = fastrelu.relu(inputs[i])
                held.append((i, y))
                if len(held) > 3 or rng.random() < 0.5:
                    j, old = held.pop(int(rng.integers(len(held))))
                    if not np.array_equal(old, refs[j]):
                        errors.append("a live array changed")
                    del old
                s = fastrelu.pool_stats()
                if s["cached_bytes"] > s["limit_bytes"]:
                    errors.append("cache above the limit")
        except Exception as e:  # reported below, with the thread's seed
            errors.append(f"{seed}: {e!r}")
        finally:
            for j, old in held:
                if not np.array_equal(old, refs[j]):
                    errors.append("a live array changed")
            held.clear()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = fastrelu.pool_stats()
    assert s["live_buffers"] == 0 and s["cached_bytes"] <= 24 * MIB
    assert s["hits"] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_starts_with_an_empty_pool():
    x = signed(N)
    live = fastrelu.relu(x)
    cached = fastrelu.relu(x)
    del cached
    parent = fastrelu.pool_stats()
    assert parent["cached_buffers"] == 1
    read, write = os.pipe()
    with warnings.catch_warnings():       # Python 3.12+: fork with threads warns
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:                                    # the child: report, never return
        code = 1
        try:
            s = fastrelu.pool_stats()
            ok = s["cached_bytes"] == 0 and s["hits"] == 0 and s["misses"] == 0
            y = fastrelu.relu(x)                    # a miss: a mapping of its own
            ok = ok and fastrelu.pool_stats()["misses"] == 1
            ok = ok and y.ctypes.data != live.ctypes.data
            ok = ok and np.array_equal(y, np.maximum(x, 0))
            live[:] = -1                            # the child's copy only
            del y
            ok = ok and fastrelu.pool_stats()["cached_buffers"] == 1
            os.write(write, b"ok" if ok else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 2)
    os.close(read)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert answer == b"ok"
    np.testing.assert_array_equal(live, np.maximum(x, 0))    # the parent's is untouched
    assert fastrelu.pool_stats()["cached_buffers"] == 1

