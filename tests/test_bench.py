"""The benchmark report runs end to end (tiny sizes; the registry's cases at
their smallest size) and writes what it promises; so does ``--pipelines`` (a
small fit and a few training steps), whose fastrelu-hooked scikit-learn MLP
trains bit for bit as scikit-learn's own."""
import collections
import functools
import json
import re
import sys

import numpy as np
import pytest

import fastrelu
import fastrelu.sklearn
from fastrelu import _bench, _pipelines
from fastrelu._registry import OPS


def test_report_json_and_table(tmp_path, capsys):
    """Small sizes: the relu cases, in the table and the JSON; the other
    operations of the registry are timed only from REGISTRY_MIN_SIZE on."""
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", "10,1000", "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for op in _bench.BASE_OPS:
        assert op in out
    assert "vs numpy" in out and "kernel path" in out
    data = json.loads(path.read_text())
    rows = data["results"]
    assert {r["op"] for r in rows} == set(_bench.BASE_OPS)
    for r in rows:
        assert r["times"]["fastrelu"] > 0 and r["times"]["numpy"] > 0
        assert set(r["spread"]) == set(r["times"])
        assert all(v >= 0 for v in r["spread"].values())
    assert data["machine"]["versions"]["numpy"]
    assert "IQR" in out


def test_every_registry_op_is_benchmarked(tmp_path, capsys):
    """Every operation of the registry has its case, timed at REGISTRY_MIN_SIZE."""
    assert set(_bench.REGISTRY_OPS) | {"relu out=", "add_relu out="} == {
        f"{op.name} out=" for op in OPS}
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", str(_bench.REGISTRY_MIN_SIZE), "--ops",
                           ",".join(_bench.REGISTRY_OPS), "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(path.read_text())["results"]
    assert {r["op"] for r in rows} == set(_bench.REGISTRY_OPS)
    for op in _bench.REGISTRY_OPS:
        assert op in out
    for r in rows:
        assert r["times"]["fastrelu"] > 0 and r["times"]["numpy"] > 0


@pytest.mark.parametrize(("samples", "iqr"), [
    ([1.0, 2.0, 3.0, 4.0, 5.0], 1.0),       # quartiles 1.5 and 4.5 around a median of 3
    ([2.0, 2.0, 2.0, 2.0], 0.0),
    ([1.0, 9.0, 5.0], 0.0),                 # too few batches for quartiles
])
def test_spread_is_the_relative_interquartile_range(samples, iqr):
    assert _bench.spread(samples) == pytest.approx(iqr)


def test_report_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "r.png"
    assert fastrelu.bench(["--sizes", "10,1000", "--ops", "relu", "--batches", "1",
                           "--no-progress", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_op_is_an_error():
    with pytest.raises(SystemExit):
        fastrelu.bench(["--ops", "nonsense"])


# --- --pipelines: whole pipelines, stock against fastrelu ---------------------------------

@pytest.fixture
def small_pipelines(monkeypatch):
    """``--pipelines`` made cheap: a 200-sample fit (one mini-batch an epoch),
    two steps a torch sample."""
    monkeypatch.setattr(_pipelines, "run_pipelines",
                        functools.partial(_pipelines.run_pipelines, n_samples=200, steps=2))


def test_pipelines_report_json_and_table(tmp_path, capsys, small_pipelines):
    """Both pipelines: a row each with a ratio, under the machine header, and in
    the JSON with their medians, samples and bit-identical weights."""
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    path = tmp_path / "p.json"
    assert fastrelu.bench(["--pipelines", "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kernel path" in out and "pipeline benchmarks" in out
    for name in _pipelines.PIPELINES:
        assert re.search(rf"^{name} .* \d+\.\d+x +yes$", out, re.M), out
    assert "vs numpy" not in out                     # not the per-op table
    data = json.loads(path.read_text())
    rows = data["pipelines"]
    assert [r["name"] for r in rows] == list(_pipelines.PIPELINES)
    for r in rows:
        assert len(r["stock_times"]) == len(r["fastrelu_times"]) == r["rounds"] == 1
        assert r["stock_s"] > 0 and r["fastrelu_s"] > 0
        assert r["ratio"] == pytest.approx(r["fastrelu_s"] / r["stock_s"])
        assert r["identical"] is True
    assert data["machine"]["versions"]["sklearn"]


def test_pipelines_unknown_name_and_rounds():
    with pytest.raises(ValueError, match="nonsense"):
        _pipelines.run_pipelines(names=["nonsense"])
    with pytest.raises(ValueError, match="rounds"):
        _pipelines.run_pipelines(rounds=0)


def _relu_hooks():
    """scikit-learn's relu hooks as they are installed now."""
    from sklearn.neural_network import _base
    return _base.ACTIVATIONS["relu"], _base.DERIVATIVES["relu"]


def _sklearn_originals():
    from sklearn.neural_network import _base
    return _base.inplace_relu, _base.inplace_relu_derivative


def test_sklearn_hooked_mlp_is_bit_identical_to_stock(monkeypatch):
    """The oracle is scikit-learn's own fit: with fastrelu's hooks (which must
    actually be called) the weights come out bit for bit the same."""
    pytest.importorskip("sklearn")
    X, y = _pipelines.sklearn_data(n_samples=200)
    stock, _ = _pipelines.sklearn_fit(X, y, fast=False)
    calls = collections.Counter()
    for name in ("relu_", "relu_backward"):
        def spy(*args, _name=name, _fn=getattr(fastrelu, name), **kwargs):
            calls[_name] += 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(fastrelu, name, spy)
    fast, _ = _pipelines.sklearn_fit(X, y, fast=True)
    assert calls["relu_"] > 0 and calls["relu_backward"] > 0
    for a, b in zip(stock.coefs_ + stock.intercepts_, fast.coefs_ + fast.intercepts_):
        assert np.array_equal(a, b)
    assert _pipelines.same_mlp(stock, fast)
    assert _relu_hooks() == _sklearn_originals()


def _raise_in_forward(monkeypatch, X):
    def boom(a):
        raise RuntimeError("boom")
    monkeypatch.setattr(fastrelu, "relu_", boom)    # the hook calls fastrelu.relu_
    return X, RuntimeError


def _nan_input(monkeypatch, X):
    X = X.copy()
    X[0, 0] = np.nan
    return X, ValueError


@pytest.mark.parametrize("failure", [_raise_in_forward, _nan_input],
                         ids=["inside-the-hook", "input-validation"])
def test_sklearn_hooks_restore_the_originals_when_fit_raises(monkeypatch, failure):
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier
    X, y = _pipelines.sklearn_data(n_samples=100)
    X, error = failure(monkeypatch, X)
    with pytest.raises(error):
        with fastrelu.sklearn.use_fastrelu():
            assert _relu_hooks() == (fastrelu.sklearn.relu, fastrelu.sklearn.relu_derivative)
            MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X, y)
    assert _relu_hooks() == _sklearn_originals()


# --- --matrix -------------------------------------------------------------------------------

def test_matrix_json_and_table(tmp_path, capsys):
    from fastrelu import _matrix
    path = tmp_path / "m.json"
    assert fastrelu.bench(["--matrix", "--sizes", "1000", "--dtypes", "float32,int8",
                           "--batches", "1", "--no-progress", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    data = json.loads(path.read_text())
    cells = data["matrix"]
    assert {(c["dtype"], c["op"]) for c in cells} == {
        (dt, op) for dt in ("float32", "int8") for op in _matrix.OPS}
    for c in cells:
        assert c["n"] == 1000 and c["bytes"] == _matrix.streams(c["op"]) * 1000 * (
            4 if c["dtype"] == "float32" else 1)
        assert c["times"]["fastrelu"] > 0 and c["times"]["copy"] > 0
        assert c["times"]["copy x2 threads"] > 0 and c["ceiling"] > 0
        assert c["op"] in out
    if "torch" in sys.modules:
        assert all(c["verdict"] in ("win", "ceiling", "tie", "LOSS") for c in cells)
        assert data["summary"]["cells"] == len(cells)
        assert "cells:" in out and "targets" in out


@pytest.mark.parametrize(("ratio", "fast", "torch_best", "ceiling", "verdict"), [
    (1.2, 1.0, 1.2, 5.0, "win"),
    (1.0, 1.0, 1.0, 1.0, "ceiling"),        # both at the copy ceiling
    (0.9, 1.0, 0.9, 1.2, "ceiling"),        # both faster than the copy
    (1.0, 2.0, 2.0, 1.0, "tie"),
    (1.0, 1.0, 1.0, 0.5, "tie"),            # both slower than the ceiling
    (0.9, 2.0, 1.8, 1.0, "LOSS"),
    (0.94, 1.0, 0.94, 0.5, "LOSS"),
])
def test_matrix_verdicts(ratio, fast, torch_best, ceiling, verdict):
    from fastrelu import _matrix
    assert _matrix._verdict(ratio, fast, torch_best, ceiling) == verdict


def test_matrix_summary_targets():
    from fastrelu import _matrix
    cell = {"ratio": 1.5, "verdict": "win"}
    assert _matrix.summary([cell] * 10)["targets_met"]
    assert not _matrix.summary([cell] * 9 + [{"ratio": 0.9, "verdict": "LOSS"}])["targets_met"]
    ties = [cell] * 8 + [{"ratio": 1.0, "verdict": "tie"}] * 2
    assert not _matrix.summary(ties)["targets_met"]           # 80% met
    assert _matrix.summary(ties[:-1] + [cell])["share_met"] == 0.9


@pytest.mark.parametrize("op", ["relu", "relu out=", "relu_ steady", "relu_backward",
                                "relu_backward out="])
@pytest.mark.parametrize("dtype", ["float16", "float64", "int8"])
def test_matrix_compares_the_same_computation(op, dtype):
    """Each cell's fastrelu call and PyTorch call give the plain-NumPy result."""
    from fastrelu import _matrix
    x = _bench.random_signed(1001, dtype, seed=1)
    g = _bench.random_signed(1001, dtype, seed=2)
    if op == "relu_ steady":
        x = np.maximum(x, 0)
    zero = np.zeros((), dtype)
    want = np.where(x > 0, g, zero) if op.startswith("relu_backward") else np.where(x > 0, x, zero)
    o = np.empty_like(x)
    fast = _matrix._fastrelu(op, x.copy() if "steady" in op else x, g, o)()
    np.testing.assert_array_equal(fast if fast is not None else o, want)
    torch = pytest.importorskip("torch")
    o2 = np.empty_like(x)
    t = _matrix._torch(torch, op, x.copy(), g, o2)()
    np.testing.assert_array_equal(t.numpy() if t is not None else o2, want)


def test_plot_is_a_grid_not_a_strip(tmp_path):
    """Five panels come out as a grid (at most three across), not one strip."""
    pytest.importorskip("matplotlib")
    import struct
    png = tmp_path / "grid.png"
    assert fastrelu.bench(["--sizes", "10,1000", "--ops", "relu,relu out=,relu_,relu_backward,"
                           "relu_grad", "--batches", "1", "--no-progress",
                           "--plot", str(png)]) == 0
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    assert width / height < 2.5


def test_every_fused_operation_is_benchmarked(tmp_path):
    """Every fused row has its case (next to the NumPy pipeline it replaces and
    the fastrelu operation it should cost no more than), timed at
    REGISTRY_MIN_SIZE, every implementation giving a time."""
    from fastrelu._registry import FUSED
    cases = {case.split()[0] for case in _bench.FUSED_CASES}
    assert {f.name.rstrip("_") for f in FUSED} <= {c.rstrip("_") for c in cases}
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", str(_bench.REGISTRY_MIN_SIZE), "--ops",
                           ",".join(_bench.FUSED_CASES), "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["results"]
    assert [r["op"] for r in rows] == list(_bench.FUSED_CASES)
    for r in rows:
        assert "fastrelu" in r["times"] and "numpy" in r["times"]
        assert all(t > 0 for t in r["times"].values())


def test_ml_dtypes_are_in_the_report(tmp_path, capsys):
    """With ml_dtypes installed, the report times relu on each of its floats
    next to np.maximum (ml_dtypes' loop), at sizes from REGISTRY_MIN_SIZE."""
    pytest.importorskip("ml_dtypes")
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", f"1000,{_bench.REGISTRY_MIN_SIZE}", "--ops", "relu",
                           "--batches", "1", "--no-progress", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(path.read_text())["results"]
    ml_rows = [r for r in rows if r["dtype"] in _bench.ML_DTYPES]
    assert sorted(r["dtype"] for r in ml_rows) == sorted(_bench.ML_DTYPES) == sorted(
        ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
    for r in ml_rows:
        assert r["n"] == _bench.REGISTRY_MIN_SIZE and r["op"] == "relu"
        assert r["times"]["fastrelu"] > 0 and r["times"]["numpy"] > 0
        assert r["dtype"] in out
