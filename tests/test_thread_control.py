"""fastrelu's thread count follows OMP_NUM_THREADS and threadpoolctl."""
import os
import subprocess
import sys

import numpy as np
import threadpoolctl

import fastrelu as fr
from fastrelu import _reference


def test_omp_num_threads_is_the_default():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import fastrelu; print(fastrelu.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "1"


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
    with fr.num_threads(3), threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fr.get_num_threads() == 3
