"""Whole-pipeline benchmarks: ``python -m fastrelu bench --pipelines``.

The per-operation report times one call; a user meets fastrelu inside a model
whose matrix products dominate. Each pipeline here is run twice, once stock
and once with fastrelu's ReLU swapped in, and the ratio of the two medians
(fastrelu / stock; below 1 is faster) says what the swap is worth end to end.

* ``sklearn-mlp``: ``MLPClassifier(hidden_layer_sizes=(256, 256),
  max_iter=5)`` fitted on ``make_classification(20000, 100 features, 5
  classes)``; the fastrelu version replaces scikit-learn's ``relu`` hooks
  (`fastrelu.sklearn.use_fastrelu`). The two fits are also compared bit for bit.
* ``torch-mlp``: one training step (forward, cross-entropy, backward, SGD) of
  a 784-512-512-10 MLP on a float32 batch of 256, ``torch.nn.ReLU`` against
  ``fastrelu.torch.ReLU`` from the same initial weights.

Methodology: one warm-up of each version, then ``rounds`` rounds of stock,
fastrelu, stock, fastrelu, ... in one process, so that drift of the machine
(frequency, other load) falls on both alike; the median of each. fastrelu
runs with its default thread settings, as a user's would. scikit-learn and
PyTorch are imported only here, when a pipeline runs: a pipeline whose
library is missing is reported as skipped.
"""
import contextlib
import importlib
import math
import statistics
import sys
import time
import warnings

import numpy as np

import fastrelu
from fastrelu.sklearn import use_fastrelu

PIPELINES = ("sklearn-mlp", "torch-mlp")
LIBRARIES = {"sklearn-mlp": ("sklearn", "scikit-learn"), "torch-mlp": ("torch", "torch")}

# The sklearn pipeline's configuration (the defaults of `run_pipelines`).
SKLEARN_SAMPLES = 20_000
SKLEARN_FEATURES = 100
SKLEARN_HIDDEN = (256, 256)
SKLEARN_EPOCHS = 5
# The torch pipeline's: layer widths, batch size, learning rate.
TORCH_LAYERS = (784, 512, 512, 10)
TORCH_BATCH = 256
TORCH_LR = 0.01
#: A torch sample times a batch of steps lasting at least this many seconds:
#: one step (a few ms) is too short to time on its own reliably.
TORCH_MIN_BATCH = 0.2


# --- scikit-learn ----------------------------------------------------------------------

def sklearn_data(n_samples=SKLEARN_SAMPLES):
    """The sklearn pipeline's data set: ``(X, y)``, float64, 5 classes."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n_samples, n_features=SKLEARN_FEATURES,
                               n_informative=30, n_classes=5, random_state=0)


def sklearn_fit(X, y, fast):
    """Fit the pipeline's ``MLPClassifier`` on ``(X, y)``, with fastrelu's hooks
    when ``fast``; returns ``(model, seconds the fit took)``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=SKLEARN_HIDDEN, max_iter=SKLEARN_EPOCHS,
                          random_state=0)
    hooks = use_fastrelu() if fast else contextlib.nullcontext()
    # max_iter=5 stops before convergence on purpose: it is a benchmark, and
    # the warning saying so would be an error under pytest's filterwarnings
    with hooks, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
    return model, seconds


def same_mlp(a, b):
    """Whether two fitted scikit-learn MLPs have bit-identical weights."""
    return (len(a.coefs_) == len(b.coefs_)
            and all(np.array_equal(p, q) for p, q in zip(a.coefs_, b.coefs_))
            and all(np.array_equal(p, q) for p, q in zip(a.intercepts_, b.intercepts_)))


def _sklearn_pipeline(rounds, n_samples, progress):
    X, y = sklearn_data(n_samples)
    models = {}

    def fit(fast):
        models[fast], seconds = sklearn_fit(X, y, fast)
        return seconds

    stock, fast = _alternate(fit, rounds, progress, "sklearn-mlp")
    hidden = ", ".join(map(str, SKLEARN_HIDDEN))
    return {
        "description": (f"MLPClassifier({hidden}) fit, {SKLEARN_EPOCHS} epochs on "
                        f"{n_samples} x {SKLEARN_FEATURES} float64, 5 classes"),
        "stock_times": stock, "fastrelu_times": fast,
        # the stock fit is the oracle: the hooks must not change a single bit
        "identical": same_mlp(models[False], models[True]),
    }


# --- PyTorch -------------------------------------------------------------------------------

def torch_mlp(fast, seed=0):
    """The torch pipeline's MLP (784-512-512-10, ReLU between the layers) with
    ``fastrelu.torch.ReLU`` when ``fast``, else ``torch.nn.ReLU``; the initial
    weights depend on ``seed`` only (ReLU modules have no parameters)."""
    import torch

    if fast:
        # imported by name: the module registers fastrelu's torch.library ops
        relu = importlib.import_module("fastrelu.torch").ReLU
    else:
        relu = torch.nn.ReLU
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(TORCH_LAYERS, TORCH_LAYERS[1:])):
        if i:
            layers.append(relu())
        layers.append(torch.nn.Linear(n_in, n_out))
    return torch.nn.Sequential(*layers)


def torch_batch(seed=0):
    """The torch pipeline's batch: ``(x, target)``, float32 (256, 784) and 10 classes."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(TORCH_BATCH, TORCH_LAYERS[0], generator=gen)
    target = torch.randint(0, TORCH_LAYERS[-1], (TORCH_BATCH,), generator=gen)
    return x, target


def torch_trainer(fast, x, target):
    """A zero-argument callable doing one training step of a fresh `torch_mlp`
    on ``(x, target)``; its ``model`` attribute is the model."""
    import torch

    model = torch_mlp(fast)
    optimizer = torch.optim.SGD(model.parameters(), lr=TORCH_LR)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()
    step.model = model
    return step


def same_torch_model(a, b):
    """Whether two torch models have bit-identical parameters."""
    import torch

    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(torch.equal(p, q) for p, q in zip(pa, pb))


def _torch_pipeline(rounds, steps, progress):
    x, target = torch_batch()
    trainers = {False: torch_trainer(False, x, target), True: torch_trainer(True, x, target)}
    for fast in (False, True):
        trainers[fast]()               # warm-up: first-call allocations, op dispatch caches
    if steps is None:
        # as many steps as make the shorter of the two batches last TORCH_MIN_BATCH;
        # both versions take the same number, so their models stay comparable
        once = min(_seconds(trainers[fast]) for fast in (False, True))
        steps = max(1, math.ceil(TORCH_MIN_BATCH / max(once, 1e-7)))

    def batch(fast):
        t0 = time.perf_counter()
        for _ in range(steps):
            trainers[fast]()
        return (time.perf_counter() - t0) / steps

    stock, fast = _alternate(batch, rounds, progress, "torch-mlp", warm_up=False)
    layers = "-".join(map(str, TORCH_LAYERS))
    return {
        "description": (f"MLP {layers} training step (forward, cross-entropy, backward, "
                        f"SGD), batch {TORCH_BATCH} float32; {steps} steps a sample"),
        "stock_times": stock, "fastrelu_times": fast,
        # the same steps from the same weights: torch's own ReLU is the oracle
        "identical": same_torch_model(trainers[False].model, trainers[True].model),
    }


# --- timing and the run ----------------------------------------------------------------------

def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _alternate(sample, rounds, progress, label, warm_up=True):
    """``sample(fast)`` returns seconds; one warm-up of each version, then
    ``rounds`` rounds of stock then fastrelu. Returns (stock, fastrelu) lists."""
    if warm_up:
        sample(False)
        sample(True)
    times = {False: [], True: []}
    for i in range(rounds):
        if progress:
            _progress_line(f"{label}: round {i + 1}/{rounds}")
        for fast in (False, True):
            times[fast].append(sample(fast))
    return times[False], times[True]


def _progress_line(text):
    sys.stderr.write(f"\r{text:<40}")
    sys.stderr.flush()


def _import_note(module, package):
    """None if ``module`` imports, else the one-line note saying why it is skipped."""
    try:
        importlib.import_module(module)
    except ImportError:
        return f"skipped: {package} is not installed"
    except Exception as exc:  # installed but broken: the pipeline is skipped, not the report
        return f"skipped: {package} failed to import ({type(exc).__name__}: {exc})"
    return None


def run_pipelines(rounds=4, names=None, *, n_samples=SKLEARN_SAMPLES, steps=None,
                  progress=False):
    """Time each pipeline stock and with fastrelu, alternately in this process.

    Parameters
    ----------
    rounds : int, optional
        Timed runs of each version (after one warm-up of each), alternating
        stock, fastrelu, stock, ...
    names : sequence of str, optional
        Pipelines to run, from `PIPELINES` (default: all).
    n_samples : int, optional
        Samples of the sklearn pipeline's data set (smaller makes it quicker).
    steps : int, optional
        Training steps per torch sample; by default as many as last
        ``TORCH_MIN_BATCH`` seconds.
    progress : bool, optional
        Show the round in progress on stderr (only when it is a terminal).

    Returns
    -------
    list of dict
        One per pipeline: ``name`` and, when it ran, ``description``,
        ``stock_s`` and ``fastrelu_s`` (median seconds per fit or per step),
        ``ratio`` (fastrelu / stock), ``identical`` (whether both versions
        trained bit-identical weights), ``rounds`` and the samples
        ``stock_times`` and ``fastrelu_times``; when its library is missing,
        ``skipped``, a one-line note, instead.

    Raises
    ------
    ValueError
        An unknown pipeline name, or ``rounds`` below 1.

    Examples
    --------
    >>> from fastrelu._pipelines import run_pipelines, format_pipelines
    >>> print(format_pipelines(run_pipelines(rounds=1, n_samples=500, steps=2)))  # doctest: +SKIP
    """
    names = PIPELINES if names is None else tuple(names)
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ValueError(f"unknown pipeline {unknown[0]!r}; choose from {PIPELINES}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    progress = progress and sys.stderr.isatty()   # no \r frames in logs and pipes
    results = []
    for name in names:
        note = _import_note(*LIBRARIES[name])
        if note is not None:
            results.append({"name": name, "skipped": note})
            continue
        if name == "sklearn-mlp":
            row = _sklearn_pipeline(rounds, n_samples, progress)
        else:
            row = _torch_pipeline(rounds, steps, progress)
        stock_s = statistics.median(row["stock_times"])
        fastrelu_s = statistics.median(row["fastrelu_times"])
        results.append({"name": name, "description": row.pop("description"),
                        "stock_s": stock_s, "fastrelu_s": fastrelu_s,
                        "ratio": fastrelu_s / stock_s, "rounds": rounds, **row})
    if progress:
        print(file=sys.stderr)
    return results


def format_pipelines(results):
    """The pipelines table: one row per pipeline, then the notes.

    Parameters
    ----------
    results : list of dict
        What `run_pipelines` returns.

    Returns
    -------
    str
        The table (median per fit or per step, stock and fastrelu, their
        ratio, whether the weights came out bit-identical) and a note per
        pipeline: what it runs, or why it was skipped.
    """
    from fastrelu._bench import _fmt_time

    rounds = {r["rounds"] for r in results if "rounds" in r}
    lines = [
        "  median time per fit (sklearn-mlp) or per training step (torch-mlp)"
        + (f" over {rounds.pop()} rounds" if len(rounds) == 1 else "")
        + ", stock and fastrelu alternately;",
        "  fastrelu/stock below 1: fastrelu is faster; identical: both versions "
        "trained bit-identical weights",
        "",
        f"{'pipeline':<14}{'stock':>12}{'fastrelu':>12}{'fastrelu/stock':>16}{'identical':>11}",
    ]
    notes = []
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['name']:<14}{'-':>12}{'-':>12}{'-':>16}{'-':>11}")
            notes.append(f"  {r['name']}: {r['skipped']}")
            continue
        identical = {True: "yes", False: "NO"}.get(r.get("identical"), "-")
        lines.append(f"{r['name']:<14}{_fmt_time(r['stock_s']):>12}"
                     f"{_fmt_time(r['fastrelu_s']):>12}{r['ratio']:>15.3f}x{identical:>11}")
        notes.append(f"  {r['name']}: {r['description']}")
    return "\n".join(lines + ["", "notes:"] + notes)
