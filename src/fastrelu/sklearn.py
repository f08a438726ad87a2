"""scikit-learn's MLP estimators on fastrelu's kernels.

``MLPClassifier`` and ``MLPRegressor`` with ``activation="relu"`` (their
default) call two hooks of ``sklearn.neural_network._base`` at every pass: the
activation, ReLU in place on each hidden layer (``np.maximum(X, 0, out=X)``),
and its derivative, which zeroes the back-propagated error where the layer's
output is 0 (``delta[Z == 0] = 0``: a boolean temporary and a masked write).
This module replaces them with `fastrelu.relu_` and
`fastrelu.relu_backward` (``relu_backward(delta, Z, out=delta)``: one pass, no
temporary). The trained models are bit-identical to scikit-learn's own: the
forward is the same ReLU, and for a ReLU output ``Z`` the masks ``Z == 0`` and
``not Z > 0`` agree everywhere but at NaN, where training has already diverged
(scikit-learn keeps the error there, fastrelu zeroes it).

The hooks are process-wide, as scikit-learn's tables are: `patch` installs
them for every estimator until `unpatch`; `use_fastrelu` for a ``with`` block.
Before installing them, the installed scikit-learn is checked: if its hooks
are not the functions fastrelu replaces (a version that renamed or changed
them), a ``RuntimeError`` says so and nothing is changed.

Examples
--------
>>> import numpy as np, fastrelu.sklearn
>>> from sklearn.neural_network import MLPClassifier
>>> X = np.random.default_rng(0).standard_normal((200, 8))
>>> y = (X[:, 0] > 0).astype(int)
>>> with fastrelu.sklearn.use_fastrelu():
...     model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=1000,
...                           random_state=0).fit(X, y)
>>> fastrelu.sklearn.is_patched()
False
"""
import contextlib
import inspect
import threading

import fastrelu

__all__ = ["is_patched", "patch", "unpatch", "use_fastrelu"]

#: The oldest scikit-learn whose hooks were checked against these.
MIN_VERSION = (1, 0)

_lock = threading.RLock()
_saved = None           # scikit-learn's own hooks while fastrelu's are installed


def relu(X):
    """The activation hook: ReLU of ``X`` in place (as scikit-learn's own)."""
    fastrelu.relu_(X)


def relu_derivative(Z, delta):
    """The derivative hook: ``delta`` zeroed in place where the layer's
    output ``Z`` is not positive."""
    if delta.dtype != Z.dtype:
        # MLPRegressor on float32 X with a float64 y back-propagates float64
        # errors through float32 layers: scikit-learn's own expression
        delta[Z == 0] = 0
        return
    fastrelu.relu_backward(delta, Z, out=delta)


def _base():
    """``sklearn.neural_network._base``, checked to hold the hooks fastrelu
    replaces (ImportError without scikit-learn, RuntimeError if they differ)."""
    try:
        import sklearn
        from sklearn.neural_network import _base
    except ImportError as e:
        raise ImportError("fastrelu.sklearn needs scikit-learn: "
                          "pip install scikit-learn") from e
    version = sklearn.__version__
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        major_minor = MIN_VERSION          # a development version: check the hooks
    if major_minor < MIN_VERSION:
        raise RuntimeError(f"fastrelu.sklearn needs scikit-learn >= "
                           f"{'.'.join(map(str, MIN_VERSION))}, found {version}")
    tables = getattr(_base, "ACTIVATIONS", None), getattr(_base, "DERIVATIVES", None)
    expected = (("X",), ("Z", "delta"))
    for table, params, what in zip(tables, expected, ("ACTIVATIONS", "DERIVATIVES")):
        hook = table.get("relu") if isinstance(table, dict) else None
        if hook in (relu, relu_derivative):
            continue
        if (not callable(hook)
                or tuple(inspect.signature(hook).parameters) != params):
            raise RuntimeError(
                f"scikit-learn {version}: sklearn.neural_network._base.{what}['relu'] is "
                f"not the in-place hook of ({', '.join(params)}) that fastrelu replaces; "
                f"fastrelu.sklearn does not support this version")
    return _base


def is_patched():
    """Whether scikit-learn's MLPs currently use fastrelu's hooks."""
    with _lock:
        return _saved is not None


def patch():
    """Make scikit-learn's MLP estimators use fastrelu for ``activation="relu"``.

    Process-wide, until `unpatch`; calling it again changes nothing.

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    RuntimeError
        The installed scikit-learn's hooks are not the ones fastrelu replaces
        (nothing is changed).
    """
    global _saved
    with _lock:
        if _saved is not None:
            return
        base = _base()
        _saved = base.ACTIVATIONS["relu"], base.DERIVATIVES["relu"]
        base.ACTIVATIONS["relu"] = relu
        base.DERIVATIVES["relu"] = relu_derivative


def unpatch():
    """Restore scikit-learn's own hooks (nothing happens if `patch` was not called)."""
    global _saved
    with _lock:
        if _saved is None:
            return
        from sklearn.neural_network import _base as base
        base.ACTIVATIONS["relu"], base.DERIVATIVES["relu"] = _saved
        _saved = None


@contextlib.contextmanager
def use_fastrelu():
    """Context manager: scikit-learn's MLPs use fastrelu inside the block.

    The previous state comes back on leaving it, also when the block raises
    (a block inside a `patch` leaves the hooks patched).

    Examples
    --------
    >>> import numpy as np, fastrelu.sklearn
    >>> from sklearn.neural_network import MLPRegressor
    >>> X = np.random.default_rng(1).standard_normal((100, 4))
    >>> with fastrelu.sklearn.use_fastrelu():
    ...     model = MLPRegressor(hidden_layer_sizes=(16,), max_iter=2000,
    ...                          random_state=0).fit(X, X.sum(axis=1))
    """
    with _lock:
        was = _saved is not None
        patch()
    try:
        yield
    finally:
        if not was:
            unpatch()
