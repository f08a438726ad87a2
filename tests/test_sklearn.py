"""fastrelu.sklearn: scikit-learn's MLP estimators on fastrelu's hooks train
bit-identical models (the oracle: scikit-learn's own fit), the hooks are
installed and restored as documented, and an unexpected scikit-learn is
refused before anything changes."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastrelu
import fastrelu.sklearn as frs

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor, _base  # noqa: E402

STOCK = (_base.inplace_relu, _base.inplace_relu_derivative)
ENV = dict(os.environ, PYTHONPATH=str(Path(fastrelu.__file__).resolve().parent.parent))


def hooks():
    return _base.ACTIVATIONS["relu"], _base.DERIVATIVES["relu"]


@pytest.fixture(autouse=True)
def stock_hooks():
    frs.unpatch()
    assert hooks() == STOCK
    yield
    frs.unpatch()
    assert hooks() == STOCK


def data(dtype, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12)).astype(dtype)
    return X, (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int), X @ rng.standard_normal(12)


def fit(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(X, y)


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_,
                                                    b.coefs_ + b.intercepts_))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_models_are_bit_identical_to_stock(kind, dtype, monkeypatch):
    X, labels, target = data(dtype)
    y = labels if kind == "classifier" else target
    estimator = MLPClassifier if kind == "classifier" else MLPRegressor

    def make():
        return estimator(hidden_layer_sizes=(32, 16), max_iter=15, random_state=0)
    stock = fit(make, X, y)
    calls = []
    for name in ("relu_", "relu_backward"):
        original = getattr(fastrelu, name)
        monkeypatch.setattr(fastrelu, name,
                            lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    with frs.use_fastrelu():
        assert frs.is_patched()
        fast = fit(make, X, y)
    # a float32 regressor with a float64 target back-propagates float64 errors
    # through float32 layers: that derivative keeps scikit-learn's expression
    mixed = kind == "regressor" and dtype == np.float32
    assert set(calls) == ({"relu_"} if mixed else {"relu_", "relu_backward"})
    assert same(stock, fast)
    assert fast.coefs_[0].dtype == dtype
    assert np.array_equal(stock.predict(X), fast.predict(X))


def test_patch_and_unpatch():
    assert not frs.is_patched()
    frs.patch()
    frs.patch()                                   # idempotent
    assert frs.is_patched() and hooks() == (frs.relu, frs.relu_derivative)
    with frs.use_fastrelu():                      # inside a patch: stays patched after
        pass
    assert frs.is_patched()
    frs.unpatch()
    assert not frs.is_patched() and hooks() == STOCK
    frs.unpatch()                                 # nothing to undo
    assert hooks() == STOCK


def test_use_fastrelu_restores_when_the_block_raises():
    X, y, _ = data(np.float64, n=50)
    X[0, 0] = np.nan                              # sklearn refuses NaN input
    with pytest.raises(ValueError):
        with frs.use_fastrelu():
            MLPClassifier(max_iter=1).fit(X, y)
    assert hooks() == STOCK and not frs.is_patched()


def test_hooks_match_sklearn_on_relu_outputs():
    """The hooks themselves, against scikit-learn's: in place, same bits
    (the derivative on a ReLU output: zeros, positives, subnormals)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64, 33))
    X[0, :3] = [-0.0, 5e-324, -5e-324]
    a, b = X.copy(), X.copy()
    _base.inplace_relu(a)
    frs.relu(b)
    assert np.array_equal(a.view(np.int64), b.view(np.int64))
    delta = rng.standard_normal(X.shape)
    d1, d2 = delta.copy(), delta.copy()
    _base.inplace_relu_derivative(a, d1)
    frs.relu_derivative(a, d2)
    assert np.array_equal(d1, d2)


@pytest.mark.parametrize("bad", [lambda X, extra: None, lambda Y: None, "not callable"])
def test_unexpected_hooks_are_refused_before_any_change(monkeypatch, bad):
    monkeypatch.setitem(_base.ACTIVATIONS, "relu", bad)
    with pytest.raises(RuntimeError, match="does not support this version"):
        frs.patch()
    assert _base.ACTIVATIONS["relu"] is bad and _base.DERIVATIVES["relu"] is STOCK[1]
    assert not frs.is_patched()


def test_old_scikit_learn_is_refused(monkeypatch):
    monkeypatch.setattr(sklearn, "__version__", "0.24.2")
    with pytest.raises(RuntimeError, match="needs scikit-learn >= 1.0, found 0.24.2"):
        frs.patch()
    assert hooks() == STOCK


def test_without_scikit_learn_a_clear_import_error():
    script = ("import sys; sys.modules['sklearn'] = None\n"
              "import fastrelu.sklearn\n"
              "try:\n    fastrelu.sklearn.patch()\n"
              "except ImportError as e:\n    print('ImportError', e)\n")
    res = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ImportError fastrelu.sklearn needs scikit-learn" in res.stdout


def test_importing_the_module_does_not_import_scikit_learn():
    script = "import sys, fastrelu.sklearn; print('sklearn' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
