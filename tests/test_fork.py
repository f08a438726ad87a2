"""A process forked after fastrelu used its thread team still works.

(GNU OpenMP hangs in a forked child that opens a parallel region after the
parent did; fastrelu's own team is rebuilt in the child.)
"""
import multiprocessing as mp
import sys

import numpy as np
import pytest

import fastrelu as fr
from fastrelu import _reference

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork start method")


def _child(queue):
    x = np.arange(-2_000_000, 2_000_000, dtype=np.float32)   # 16 MB: threaded size
    y = fr.relu(x)
    queue.put(bool(np.array_equal(y, _reference.relu(x))))


def test_forked_child_after_threaded_call():
    x = np.arange(-2_000_000, 2_000_000, dtype=np.float32)
    with fr.num_threads(2):
        fr.relu(x)                       # the parent's team now exists
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        pytest.fail("the forked child hung in fastrelu.relu")
    assert proc.exitcode == 0
    assert queue.get(timeout=5) is True
