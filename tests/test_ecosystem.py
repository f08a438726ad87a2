"""fastrelu inside the PyData ecosystem: ufuncs, pandas, xarray, dask, pickling."""
import pickle

import numpy as np
import pytest

import fastrelu as fr
from fastrelu import ufuncs

dask_array = pytest.importorskip("dask.array")
pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")


def relu_oracle(x):
    return np.where(x <= 0, np.zeros((), dtype=x.dtype), x)   # NaN kept


# --- the ufuncs ------------------------------------------------------------------------

@pytest.mark.parametrize("name, nin", [
    ("relu", 1), ("relu_grad", 1), ("relu_backward", 2), ("relu6", 1),
    ("relu6_backward", 2), ("leaky_relu", 2), ("leaky_relu_backward", 3),
])
def test_ufuncs_are_numpy_ufuncs(name, nin):
    uf = getattr(ufuncs, name)
    assert isinstance(uf, np.ufunc)
    assert (uf.__name__, uf.nin, uf.nout) == (name, nin, 1)
    assert pickle.loads(pickle.dumps(uf)) is uf


def test_ufuncs_follow_numpy_protocols():
    x = np.arange(-6.0, 6.0).reshape(3, 4)
    np.testing.assert_array_equal(ufuncs.relu(x), relu_oracle(x))
    # broadcasting, where=, out=
    g = np.ones(4)
    np.testing.assert_array_equal(ufuncs.relu_backward(g, x), (x > 0).astype(float))
    out = np.full_like(x, -7.0)
    ufuncs.relu(x, out=out, where=x > -3)
    np.testing.assert_array_equal(out, np.where(x > -3, relu_oracle(x), -7.0))
    # an array of slopes, element by element
    slopes = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(ufuncs.leaky_relu(x, slopes), np.where(x > 0, x, x * slopes))


@pytest.mark.parametrize("func", [fr.relu, fr.relu_, fr.relu_grad, fr.relu_backward, fr.relu6,
                                  fr.leaky_relu, fr.leaky_relu_backward, fr.relu6_backward])
def test_functions_pickle_by_reference(func):
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
    np.testing.assert_array_equal(rd.to_numpy(), np.clip(df.to_numpy(), 0, 6))
    rl = fr.leaky_relu(s, 0.5)
    assert list(rl.index) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(rl.to_numpy()[[0, 1]], [-0.75, 2.0])
    grad = fr.relu_backward(pd.Series([1.0, 1.0, 1.0, 1.0], index=s.index), s)
    np.testing.assert_array_equal(grad.to_numpy(), [0.0, 1.0, 0.0, 0.0])


def test_pandas_unsupported_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="bool"):
        fr.relu(pd.Series([True, False]))


def test_xarray_keeps_coords_and_dims():
    da = xr.DataArray(np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32),
                      dims=("x", "y"), coords={"x": [10, 20]}, attrs={"units": "V"})
    r = fr.relu(da)
    assert isinstance(r, xr.DataArray)
    assert r.dims == ("x", "y") and list(r.coords["x"].values) == [10, 20]
    np.testing.assert_array_equal(r.values, relu_oracle(da.values))
    assert r.dtype == np.float32


# --- dask: lazy, block by block --------------------------------------------------------------

def test_dask_is_lazy_and_blockwise():
    x = np.linspace(-5, 5, 1001).astype(np.float32)
    d = dask_array.from_array(x, chunks=100)
    r = fr.relu(d)
    assert isinstance(r, dask_array.Array)
    assert r.chunks == d.chunks                 # block by block, nothing computed yet
    np.testing.assert_array_equal(r.compute(), relu_oracle(x))
    np.testing.assert_array_equal(fr.relu_backward(d, d).compute(), np.where(x > 0, x, 0))
    np.testing.assert_array_equal(fr.relu6(d).compute(), np.clip(x, 0, 6))


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
