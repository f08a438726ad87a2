"""fastrelu's thread count follows OMP_NUM_THREADS and threadpoolctl."""
import os
import subprocess
import sys

import numpy as np
import threadpoolctl

import fastrelu as fr
from fastrelu import _engine, _reference


def test_omp_num_threads_is_the_default():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import fastrelu; print(fastrelu.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "1"


def test_omp_num_threads_list_takes_its_first_entry():
    """A list (nested levels) is OpenMP's syntax: the first entry counts, in
    builds with and without OpenMP alike."""
    env = dict(os.environ, OMP_NUM_THREADS="1,2")
    code = "import fastrelu; print(fastrelu.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "1"


def test_threadpoolctl_lists_what_sets_the_default():
    """threadpoolctl finds the library that gives fastrelu's default count: the
    OpenMP runtime the engine links, or, in a build without OpenMP, fastrelu's
    own controller (internal_api "fastrelu", the engine module's path)."""
    infos = threadpoolctl.threadpool_info()
    config = _capture_show_config()
    if _engine.OPENMP:
        assert any(i["user_api"] == "openmp" and i["internal_api"] != "fastrelu" for i in infos)
        assert "OpenMP's (OMP_NUM_THREADS, threadpoolctl)" in config
    else:
        (mine,) = [i for i in infos if i["internal_api"] == "fastrelu"]
        assert mine["user_api"] == "openmp"
        assert os.path.samefile(mine["filepath"], _engine.__file__)
        assert mine["num_threads"] >= 1 and mine["version"] == fr.__version__
        assert "built without OpenMP" in config


def _capture_show_config():
    import io
    buffer = io.StringIO()
    fr.show_config(file=buffer)
    return buffer.getvalue()


def test_threadpool_limits_without_user_api_apply():
    previous = fr.set_num_threads(None)
    try:
        before = fr.get_num_threads()
        with threadpoolctl.threadpool_limits(1):
            assert fr.get_num_threads() == 1
        assert fr.get_num_threads() == before
    finally:
        fr.set_num_threads(previous)


def test_threadpoolctl_limits_are_honoured():
    previous = fr.set_num_threads(None)
    try:
        with threadpoolctl.threadpool_limits(1, user_api="openmp"):
            assert fr.get_num_threads() == 1
            x = np.arange(-500_000, 500_000, dtype=np.float64)
            np.testing.assert_array_equal(fr.relu(x), _reference.relu(x))
        with threadpoolctl.threadpool_limits(2, user_api="openmp"):
            assert fr.get_num_threads() == 2
    finally:
        fr.set_num_threads(previous)


def test_explicit_setting_wins_over_openmp():
    with fr.num_threads(2), threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fr.get_num_threads() == min(2, _engine.THREAD_CAP)


def test_thread_cap_is_the_cpus_available():
    """A count above the CPUs available to the process is used as that many
    (more threads than cores only slow memory-bound calls down)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= _engine.THREAD_CAP <= cpus
    previous = fr.set_num_threads(10**6)
    try:
        assert fr.get_num_threads() == _engine.THREAD_CAP
        x = np.arange(-500_000, 500_000, dtype=np.float32)
        np.testing.assert_array_equal(fr.relu(x), _reference.relu(x))
    finally:
        assert fr.set_num_threads(previous) == 10**6   # the setting itself is kept


def test_omp_thread_limit_caps_the_count():
    env = dict(os.environ, OMP_THREAD_LIMIT="1", OMP_NUM_THREADS="4")
    code = ("import fastrelu; fastrelu.set_num_threads(8); "
            "print(fastrelu.get_num_threads(), fastrelu._engine.THREAD_CAP)")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["1", "1"]


def test_num_threads_blocks_are_per_thread():
    """``with num_threads(n)`` in one Python thread does not change another
    thread's count, and each restores its own on exit (threadpoolctl users
    expect this); the process-wide setting is untouched."""
    import threading
    barrier = threading.Barrier(2)
    seen = {}

    def worker(n):
        with fr.num_threads(n):
            barrier.wait()              # both blocks are open at once
            seen[n] = fr.get_num_threads()
            barrier.wait()
        seen[(n, "after")] = fr.get_num_threads()

    previous = fr.set_num_threads(2)
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cap = _engine.THREAD_CAP
        assert seen == {1: 1, 2: min(2, cap), (1, "after"): min(2, cap),
                        (2, "after"): min(2, cap)}
        assert fr.get_num_threads() == min(2, cap)
    finally:
        fr.set_num_threads(previous)
