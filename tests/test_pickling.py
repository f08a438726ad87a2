"""What a fresh process sees: fastrelu's public functions and ufuncs pickle by
reference (pickle, cloudpickle, joblib) in a process that ran nothing but
``import fastrelu``, and run in worker processes (multiprocessing with the
spawn start method, joblib's loky workers, a dask.distributed cluster whose
driver imports only fastrelu and dask).

Every check runs in a fresh interpreter: this module imports nothing of
fastrelu's at the top, so that no import of its own can make a missing one in
the package look fine.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

def _pythonpath():
    # the fastrelu under test: installed, or the in-tree build when run from src/
    import importlib.util
    spec = importlib.util.find_spec("fastrelu")
    return str(Path(spec.origin).resolve().parent.parent)


def fresh(code, timeout=300):
    """Run ``code`` in a new interpreter; its stdout (it must exit 0)."""
    env = dict(os.environ, PYTHONPATH=_pythonpath())
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


# every public function and every ufunc, reached from a plain ``import fastrelu``
NAMES = """
import fastrelu
from fastrelu._registry import FUNCTION_NAMES, OPS
objects = [getattr(fastrelu, n) for n in FUNCTION_NAMES]
objects += [getattr(fastrelu.ufuncs, op.name) for op in OPS]
"""


@pytest.mark.parametrize("module", ["pickle", "cloudpickle", "joblib"])
def test_everything_pickles_by_reference_after_a_plain_import(module, tmp_path):
    if module != "pickle":
        pytest.importorskip(module)
    blob = tmp_path / "objects.pkl"
    dump = {"pickle": "pickle.dump(objects, f)",
            "cloudpickle": "cloudpickle.dump(objects, f)",
            "joblib": "joblib.dump(objects, f)"}[module]
    load = "joblib.load(f)" if module == "joblib" else "pickle.load(f)"
    out = fresh(NAMES + f"""
import {module}, pickle
with open({str(blob)!r}, "wb") as f:
    {dump}
with open({str(blob)!r}, "rb") as f:
    back = {load}
assert all(a is b for a, b in zip(back, objects)), "not the same objects"
print(len(objects))
""")
    assert int(out) > 0
    # and in another process that has imported nothing yet: by reference
    out = fresh(f"""
import sys, pickle
{"import joblib" if module == "joblib" else ""}
with open({str(blob)!r}, "rb") as f:
    back = {load}
import fastrelu
from fastrelu._registry import FUNCTION_NAMES, OPS
want = [getattr(fastrelu, n) for n in FUNCTION_NAMES]
want += [getattr(fastrelu.ufuncs, op.name) for op in OPS]
assert all(a is b for a, b in zip(back, want))
print(type(back[0]).__name__, type(back[-1]).__name__)
""")
    assert out.split()[1] == "ufunc"


def test_multiprocessing_spawn_workers():
    out = fresh("""
import multiprocessing as mp
import numpy as np
import fastrelu

if True:   # (a -c script: spawned children do not run it again)
    xs = [np.arange(-5, 5, dtype=dt) for dt in ("float32", "int16", "float64")]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(fastrelu.relu, xs)
        backs = pool.starmap(fastrelu.ufuncs.relu_backward, [(x, x) for x in xs])
    for x, r, b in zip(xs, results, backs):
        assert r.dtype == x.dtype and (r == np.where(x > 0, x, 0)).all()
        assert (b == np.where(x > 0, x, 0)).all()
    print("ok")
""")
    assert out.strip() == "ok"


def test_joblib_loky_workers():
    pytest.importorskip("joblib")
    out = fresh("""
import numpy as np
import fastrelu
from joblib import Parallel, delayed

xs = [np.linspace(-3, 3, 1001, dtype=np.float32) * k for k in range(1, 5)]
results = Parallel(n_jobs=2, backend="loky")(delayed(fastrelu.relu)(x) for x in xs)
results += Parallel(n_jobs=2, backend="loky")(delayed(fastrelu.ufuncs.relu)(x) for x in xs)
for x, r in zip(xs + xs, results):
    assert (r == np.where(x > 0, x, np.float32(0))).all()
print("ok")
""")
    assert out.strip() == "ok"


@pytest.mark.slow
def test_dask_distributed_driver_that_imports_only_fastrelu_and_dask():
    pytest.importorskip("distributed")
    out = fresh("""
import numpy as np
import dask.array as da
from dask.distributed import Client, LocalCluster
import fastrelu

if True:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="2GB") as cluster, \\
            Client(cluster):
        x = da.arange(-500_000, 500_000, chunks=125_000, dtype=np.int64).astype(np.float32)
        y = fastrelu.relu(x).compute()
        g = fastrelu.relu_backward(da.ones_like(x), x).compute()
        want = np.where(np.arange(-500_000, 500_000) > 0,
                        np.arange(-500_000, 500_000), 0).astype(np.float32)
        assert (y == want).all() and (g == (want > 0)).all()
print("ok")
""")
    assert out.strip().splitlines()[-1] == "ok"
