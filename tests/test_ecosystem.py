"""fastrelu inside the PyData ecosystem, for every operation of the registry:
ufuncs, pandas, xarray, dask, pickling."""
import pickle

import numpy as np
import pytest

import fastrelu as fr
from fastrelu import ufuncs
from fastrelu._registry import BY_NAME, FUNCTION_NAMES
from helpers import OPS, assert_same, call, expected, op_id, param_sets

dask_array = pytest.importorskip("dask.array")
pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")


def relu_oracle(x):
    return expected(OPS[0], (x,))


# --- the ufuncs ------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_ufuncs_are_numpy_ufuncs(op):
    uf = getattr(ufuncs, op.name)
    assert isinstance(uf, np.ufunc)
    assert (uf.__name__, uf.nin, uf.nout) == (op.name, op.arity + len(op.params), 1)
    assert pickle.loads(pickle.dumps(uf)) is uf


@pytest.mark.parametrize("op", [op for op in OPS if op.params], ids=op_id)
def test_ufunc_parameters_broadcast(op):
    """A parameter of a ufunc may be an array: it broadcasts, element by element
    (here one value per column), like any ufunc operand. (where=, out= and the
    operands broadcasting: test_ops.py.)"""
    x = np.arange(-6.0, 6.0).reshape(3, 4)
    arrays = (x[::-1].copy(), x)[-op.arity:]
    columns = [param_sets(op, "float64")[j] for j in range(4)]
    operands = [np.array([c[i] for c in columns]) for i in range(len(op.params))]
    want = np.stack([expected(op, tuple(a[:, j] for a in arrays), columns[j])
                     for j in range(4)], axis=1)
    assert_same(getattr(ufuncs, op.name)(*arrays, *operands), want)


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_functions_pickle_by_reference(name):
    func = getattr(fr, name)
    assert pickle.loads(pickle.dumps(func)) is func


# --- pandas and xarray keep their labels -------------------------------------------------------

def test_pandas_series_and_dataframe_keep_their_index():
    s = pd.Series([-1.5, 2.0, np.nan, -0.0], index=["a", "b", "c", "d"], name="v")
    r = fr.relu(s)
    assert isinstance(r, pd.Series)
    assert list(r.index) == ["a", "b", "c", "d"] and r.name == "v"
    np.testing.assert_array_equal(r.to_numpy(), relu_oracle(s.to_numpy()))
    df = pd.DataFrame({"a": [-1.0, 2.0], "b": [3.0, -4.0]}, index=[10, 20])
    rd = fr.relu6(df)
    assert isinstance(rd, pd.DataFrame) and list(rd.index) == [10, 20]
    assert_same(rd.to_numpy(), expected(BY_NAME["relu6"], (df.to_numpy(),)))
    rl = fr.leaky_relu(s, 0.5)
    assert list(rl.index) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(rl.to_numpy()[[0, 1]], [-0.75, 2.0])
    grad = fr.relu_backward(pd.Series([1.0, 1.0, 1.0, 1.0], index=s.index), s)
    np.testing.assert_array_equal(grad.to_numpy(), [0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_pandas_series_keep_their_index(op):
    """Every op on Series (float64, and int64 where the op takes it) returns a
    Series with the index and name kept and the reference's values."""
    for dtype in [dt for dt in ("float64", "int64") if dt in op.dtype_names]:
        values = np.array([-1.5, 2.0, np.nan, -0.0, 7.0, 5.5]).astype(dtype) \
            if dtype == "float64" else np.array([-2, 0, 3, 6, 9, -7], dtype)
        index = list("abcdef")
        series = [pd.Series(values[::-1].copy(), index=index, name="g"),
                  pd.Series(values, index=index, name="v")][-op.arity:]
        params = param_sets(op, dtype)[0]
        r = call(op, series, params)
        assert isinstance(r, pd.Series)
        assert list(r.index) == index
        assert_same(r.to_numpy(), expected(op, tuple(s.to_numpy() for s in series), params))


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_pandas_unsupported_dtype_is_a_type_error(op):
    with pytest.raises(TypeError, match="bool"):
        call(op, (pd.Series([True, False]),) * op.arity, param_sets(op, "float64")[0])


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_xarray_every_op_keeps_coords_and_dims(op):
    x = np.array([[-1.0, 2.0], [6.5, -4.0]], dtype=np.float32)
    arrays = tuple(xr.DataArray(a, dims=("x", "y"), coords={"x": [10, 20]})
                   for a in (x[::-1].copy(), x)[-op.arity:])
    params = param_sets(op, "float32")[0]
    r = call(op, arrays, params)
    assert isinstance(r, xr.DataArray)
    assert r.dims == ("x", "y") and list(r.coords["x"].values) == [10, 20]
    assert_same(r.values, expected(op, tuple(a.values for a in arrays), params))


def test_xarray_keeps_coords_and_dims():
    da = xr.DataArray(np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32),
                      dims=("x", "y"), coords={"x": [10, 20]}, attrs={"units": "V"})
    r = fr.relu(da)
    assert isinstance(r, xr.DataArray)
    assert r.dims == ("x", "y") and list(r.coords["x"].values) == [10, 20]
    np.testing.assert_array_equal(r.values, relu_oracle(da.values))
    assert r.dtype == np.float32


# --- dask: lazy, block by block --------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_dask_every_op_is_lazy_and_blockwise(op):
    x = np.linspace(-8, 8, 1001).astype(np.float32)
    arrays = tuple(dask_array.from_array(a, chunks=100) for a in (x[::-1].copy(), x)[-op.arity:])
    params = param_sets(op, "float32")[0]
    r = call(op, arrays, params)
    assert isinstance(r, dask_array.Array)
    assert r.chunks == arrays[-1].chunks         # block by block, nothing computed yet
    assert_same(r.compute(), expected(op, tuple(a.compute() for a in arrays), params))


@pytest.mark.slow
def test_dask_distributed_cluster_with_worker_processes():
    """1e8 elements relu'd by fastrelu on two worker processes equal the oracle."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, memory_limit="4GB") as cluster, \
            distributed.Client(cluster) as client:
        n = 100_000_000
        d = dask_array.arange(-n // 2, n // 2, chunks=n // 8, dtype=np.int64).astype(np.float32)
        r = fr.relu(d)
        oracle = dask_array.where(d > 0, d, np.float32(0))
        assert bool((r == oracle).all().compute())
        # the sum of relu over -n/2..n/2-1 is sum(1..n/2-1) (checked in float64)
        total = r.astype(np.float64).sum().compute()
        assert total == float((n // 2 - 1) * (n // 2) // 2)
        # the work ran in the workers (fastrelu was imported there)
        imported = client.run(lambda: __import__("sys").modules.get("fastrelu") is not None)
        assert all(imported.values())


def test_ufuncs_pickle_after_a_plain_import():
    """In a fresh process where only ``import fastrelu`` ran (as on a dask
    worker), every ufunc the functions use pickles by reference and comes back
    as the same object, through a separate process too."""
    import subprocess
    import sys
    from pathlib import Path
    env = dict(__import__("os").environ,
               PYTHONPATH=str(Path(fr.__file__).resolve().parent.parent))
    code = ("import pickle, fastrelu\n"
            "from fastrelu._registry import OPS\n"
            "from fastrelu._ufuncs import UFUNCS\n"
            "blob = pickle.dumps([UFUNCS[op.name] for op in OPS])\n"
            "assert pickle.loads(blob) == [UFUNCS[op.name] for op in OPS]\n"
            "import sys; sys.stdout.buffer.write(blob)\n")
    blob = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True).stdout
    child = subprocess.run([sys.executable, "-c",
                            "import pickle, sys; u = pickle.loads(sys.stdin.buffer.read()); "
                            "print(*(f.__name__ for f in u))"],
                           input=blob, env=env, check=True, capture_output=True)
    from fastrelu._registry import OPS
    assert child.stdout.decode().split() == [op.name for op in OPS]
