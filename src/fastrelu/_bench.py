"""The benchmark report: ``python -m fastrelu bench`` or ``fastrelu.bench()``.

Times fastrelu side by side with pure Python, NumPy and, when installed,
PyTorch, numexpr and numba, on the same data in one process, and prints median
time, throughput and the speed-up over NumPy, with ``np.copyto`` (one thread
and one per core) as the physical reference: a ReLU moves the same bytes as a
copy.

Methodology: random-sign data (half negative); a warm-up call; batches sized
to last at least ``min_batch`` seconds; the median over batches. In-place cases
are timed on fresh copies of data that still has negatives (the copies are
made outside the timed region).

``--pipelines`` prints whole-pipeline benchmarks instead (a scikit-learn MLP
fit, a PyTorch training step, stock and with fastrelu): fastrelu._pipelines.
"""
import argparse
import contextlib
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import fastrelu
from fastrelu import _engine, _registry

QUICK_SIZES = (10, 1_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
FULL_SIZES = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
QUICK_DTYPES = ("float32",)
FULL_DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64")
BASE_OPS = ("relu", "relu out=", "relu_", "relu_backward", "relu_grad", "relu x[::2]")
#: Cases that allocate their output: timed with the output pool on (the
#: default) and off (``set_pool_limit(0)``: NumPy's allocator), side by side.
ALLOCATING = ("relu", "relu_backward", "relu_grad", "relu x[::2]")
#: Every other operation of the registry, out of place into an existing
#: ``out`` (no allocation, no page faults): the cases that show the loops and
#: the streaming stores of each operation. Timed at sizes of at least
#: REGISTRY_MIN_SIZE.
REGISTRY_OPS = tuple(f"{op.name} out=" for op in _registry.OPS
                     if op.name not in ("relu", "add_relu"))
REGISTRY_MIN_SIZE = 1_000_000
#: The fused operations (float32 data as (batch, FEATURES) where they take an
#: axis), each next to the plain-NumPy pipeline it replaces and to the
#: fastrelu operation it should cost no more than. Timed at sizes of at least
#: REGISTRY_MIN_SIZE.
FUSED_CASES = ("add_relu out=", "bias_relu_", "bias_relu_backward", "relu_with_mask",
               "relu_backward_mask", "relu_with_counts")
FEATURES = 1000
OPS = BASE_OPS + REGISTRY_OPS + FUSED_CASES
#: The ml_dtypes floats (when installed): ``relu`` on each, next to
#: ``np.maximum`` (ml_dtypes' scalar loop) and PyTorch's bfloat16, at the
#: sizes of a run from REGISTRY_MIN_SIZE to ML_MAX_SIZE.
ML_DTYPES = tuple(dt.name for dt in _engine.ML_DTYPES)
ML_MAX_SIZE = 10_000_000
#: Cases timed on fresh copies of the data (they write into it).
INPLACE_CASES = ("relu_", "bias_relu_")
PURE_PYTHON_MAX = 100_000
#: Parameter values of the registry cases, by parameter name.
PARAMS = {"negative_slope": 0.01, "threshold": 0.5, "value": -1.0}


# --- data -------------------------------------------------------------------------

def random_signed(n, dtype, seed=0):
    """``n`` values of ``dtype`` with random signs (about half negative)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if _engine.is_float(dtype):
        return rng.standard_normal(n, dtype=np.float32).astype(dtype, copy=False)
    hi = min(int(np.iinfo(dtype).max), 1000)
    lo = 0 if dtype.kind == "u" else -hi      # unsigned: ReLU is a copy
    return rng.integers(lo, hi, size=n, endpoint=True, dtype=dtype)


# --- implementations: op -> impl -> (setup(x, g) -> callable, bytes moved) ------------

def _pool_copy(threads):
    pool = ThreadPoolExecutor(threads)

    def copy(out, x):
        bounds = np.linspace(0, x.size, threads + 1).astype(int)
        list(pool.map(lambda i: np.copyto(out[bounds[i]:bounds[i + 1]],
                                          x[bounds[i]:bounds[i + 1]]), range(threads)))
    return copy


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # not installed, or broken: it is simply not compared
        return None


def implementations(threads):
    """{op: {impl: make(x, g) -> zero-argument callable}} for what is installed."""
    torch = _optional("torch")
    numexpr = _optional("numexpr")
    numba = _optional("numba")

    impls = {op: {} for op in OPS}
    impls["relu"]["fastrelu"] = lambda x, g: (lambda: fastrelu.relu(x))
    impls["relu"]["numpy"] = lambda x, g: (lambda: np.maximum(x, 0))
    impls["relu"]["python"] = lambda x, g: _pure_python(x)
    impls["relu out="]["fastrelu"] = lambda x, g: _with_out(x, lambda o: fastrelu.relu(x, out=o))
    if threads > 1:
        impls["relu out="]["fastrelu 1 thread"] = (
            lambda x, g: _single_threaded(_with_out(x, lambda o: fastrelu.relu(x, out=o))))
    impls["relu out="]["numpy"] = lambda x, g: _with_out(x, lambda o: np.maximum(x, 0, out=o))
    impls["relu out="]["copy"] = lambda x, g: _with_out(x, lambda o: np.copyto(o, x))
    if threads > 1:
        copy = _pool_copy(threads)
        impls["relu out="][f"copy x{threads} threads"] = (
            lambda x, g: _with_out(x, lambda o: copy(o, x)) if x.size >= 1_000_000 else None)
    impls["relu_"]["fastrelu"] = lambda x, g: fastrelu.relu_
    impls["relu_"]["numpy"] = lambda x, g: (lambda a: np.maximum(a, 0, out=a))
    impls["relu x[::2]"]["fastrelu"] = lambda x, g: (lambda: fastrelu.relu(x[::2]))
    impls["relu x[::2]"]["numpy"] = lambda x, g: (lambda: np.maximum(x[::2], 0))
    impls["relu_backward"]["fastrelu"] = lambda x, g: (lambda: fastrelu.relu_backward(g, x))
    impls["relu_backward"]["numpy"] = lambda x, g: (lambda: g * (x > 0))
    impls["relu_grad"]["fastrelu"] = lambda x, g: (lambda: fastrelu.relu_grad(x))
    impls["relu_grad"]["numpy"] = lambda x, g: (lambda: (x > 0).astype(x.dtype))
    for op in ALLOCATING:
        impls[op] = {"fastrelu": impls[op]["fastrelu"],
                     "fastrelu pool off": _pool_off(impls[op]["fastrelu"]),
                     **{k: v for k, v in impls[op].items() if k != "fastrelu"}}

    if torch is not None:
        def torch_relu(x, g):
            if x.dtype.name == "bfloat16":        # ml_dtypes': the same memory as torch's
                t = torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
                return lambda: torch.relu(t)
            if x.dtype == np.float16 or x.dtype.kind == "u" or x.dtype.name in ML_DTYPES:
                return None
            t = torch.from_numpy(x)
            return lambda: torch.relu(t)

        def torch_relu_(x, g):
            return None if x.dtype.kind == "u" else (lambda a: torch.relu_(torch.from_numpy(a)))

        def torch_backward(x, g):
            if x.dtype.kind != "f":
                return None
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            return lambda: torch.ops.aten.threshold_backward(tg, tx, 0)
        impls["relu"]["torch"] = torch_relu
        impls["relu_"]["torch"] = torch_relu_
        impls["relu_backward"]["torch"] = torch_backward
    if numexpr is not None:
        def numexpr_relu(x, g):
            if x.dtype.kind != "f" or x.dtype == np.float16 or x.dtype.name in ML_DTYPES:
                return None
            return lambda: numexpr.evaluate("where(x > 0, x, 0)", local_dict={"x": x})
        impls["relu"]["numexpr"] = numexpr_relu
    if numba is not None:
        relu_into, _ = numba_kernels()

        def numba_relu(x, g):
            if x.dtype == np.float16 or x.dtype.name in ML_DTYPES:
                return None
            relu_into(x[:1], np.empty_like(x[:1]))   # compile outside the timing
            return lambda: relu_into(x, np.empty_like(x))
        impls["relu"]["numba"] = numba_relu
    _registry_implementations(impls, torch)
    _fused_implementations(impls)
    return impls


def _rows_of(a):
    """``a`` as (batch, FEATURES) (the fused cases' layer shape)."""
    return a.reshape(-1, FEATURES)


def _fused_implementations(impls):
    """The fused cases: fastrelu's fused call, the fastrelu operation it
    should cost no more than, and the NumPy pipeline it replaces."""
    def case(make):
        def sized(x, g):
            if x.dtype.kind != "f" or x.size < REGISTRY_MIN_SIZE or x.size % FEATURES:
                return None
            return make(x, g)
        return sized

    def bias(x):
        return random_signed(FEATURES, x.dtype, seed=3)

    impls["add_relu out="] = {
        "fastrelu": case(lambda x, g: _with_out(x, lambda o: fastrelu.add_relu(x, g, out=o))),
        "numpy": case(lambda x, g: _with_out(
            x, lambda o: np.maximum(np.add(x, g, out=o), 0, out=o))),
    }

    def numpy_bias_relu_(x, g):
        b = bias(x)

        def layer(a):
            a = _rows_of(a)
            a += b
            np.maximum(a, 0, out=a)
        return layer
    impls["bias_relu_"] = {
        "fastrelu": case(lambda x, g: (lambda a, b=bias(x): fastrelu.bias_relu_(_rows_of(a), b))),
        "fastrelu relu_": case(lambda x, g: fastrelu.relu_),
        "numpy": case(numpy_bias_relu_),
    }

    def numpy_bias_backward(x, g):
        y, go = _rows_of(np.maximum(x, 0)), _rows_of(g)

        def backward():
            gx = go * (y > 0)
            return gx, gx.sum(axis=0)
        return backward

    def relu_of(x):
        return _rows_of(fastrelu.relu(x))
    impls["bias_relu_backward"] = {
        "fastrelu": case(lambda x, g: (
            lambda y=relu_of(x), go=_rows_of(g): fastrelu.bias_relu_backward(go, y))),
        "fastrelu relu_backward": case(lambda x, g: (
            lambda y=fastrelu.relu(x): fastrelu.relu_backward(g, y))),
        "numpy": case(numpy_bias_backward),
    }
    impls["relu_with_mask"] = {
        "fastrelu": case(lambda x, g: (lambda: fastrelu.relu_with_mask(x))),
        "fastrelu relu": case(lambda x, g: (lambda: fastrelu.relu(x))),
        "numpy": case(lambda x, g: (
            lambda: (np.maximum(x, 0), np.packbits(x > 0, bitorder="little")))),
    }

    def mask_of(x):
        return fastrelu.relu_with_mask(x)[1]
    impls["relu_backward_mask"] = {
        "fastrelu": case(lambda x, g: (
            lambda m=mask_of(x): fastrelu.relu_backward_mask(g, m))),
        "fastrelu relu_backward": case(lambda x, g: (lambda: fastrelu.relu_backward(g, x))),
        "numpy": case(lambda x, g: (
            lambda m=mask_of(x): g * np.unpackbits(m, count=x.size,
                                                   bitorder="little").view(bool))),
    }

    def then_count(relu):
        def make(x, g):
            rows = _rows_of(x)
            return lambda: np.count_nonzero(relu(rows) > 0, axis=0)
        return make
    impls["relu_with_counts"] = {
        "fastrelu": case(lambda x, g: (lambda r=_rows_of(x): fastrelu.relu_with_counts(r))),
        "fastrelu relu": case(lambda x, g: (lambda r=_rows_of(x): fastrelu.relu(r))),
        "fastrelu relu+count": case(then_count(fastrelu.relu)),
        "numpy": case(then_count(lambda r: np.maximum(r, 0))),
    }


@functools.lru_cache(maxsize=None)
def numba_kernels():
    """numba's parallel loops for the comparison, ``(relu_into(x, out),
    backward_into(g, x, out))``, or None without numba (compiled per dtype on
    first use)."""
    numba = _optional("numba")
    if numba is None:
        return None

    @numba.njit(parallel=True, cache=False)
    def relu_into(x, out):
        for i in numba.prange(x.size):
            v = x[i]
            out[i] = v if v > 0 else 0
        return out

    @numba.njit(parallel=True, cache=False)
    def backward_into(g, x, out):
        for i in numba.prange(x.size):
            out[i] = g[i] if x[i] > 0 else 0
        return out
    return relu_into, backward_into


# NumPy's natural spelling of each operation (the fastest plain-NumPy form we
# know, into ``out`` where NumPy allows it); an operation without one is
# compared with its plain-NumPy twin in fastrelu._reference.
_NUMPY = {
    "relu_grad": lambda x, g, o, p: np.greater(x, 0, out=o),
    "relu_backward": lambda x, g, o, p: np.multiply(g, x > 0, out=o),
    "relu6": lambda x, g, o, p: np.clip(x, 0, 6, out=o),
    "relu6_backward": lambda x, g, o, p: np.multiply(g, (x > 0) & (x < 6), out=o),
    "leaky_relu": lambda x, g, o, p: np.where(x > 0, x, x * p[0]),
    "leaky_relu_backward": lambda x, g, o, p: np.where(x > 0, g, g * p[0]),
    "threshold": lambda x, g, o, p: np.where(x > p[0], x, p[1]),
    "threshold_backward": lambda x, g, o, p: np.multiply(g, x > p[0], out=o),
}


def _torch_op(torch, name):
    """PyTorch's form of a registry operation, with ``out=``, or None."""
    aten = torch.ops.aten
    return {
        "relu_backward": lambda x, g, o, p: aten.threshold_backward.grad_input(
            g, x, 0, grad_input=o),
        "relu6": lambda x, g, o, p: torch.clamp(x, 0, 6, out=o),
        "leaky_relu": lambda x, g, o, p: aten.leaky_relu.out(x, p[0], out=o),
        "threshold": lambda x, g, o, p: aten.threshold.out(x, p[0], p[1], out=o),
        "threshold_backward": lambda x, g, o, p: aten.threshold_backward.grad_input(
            g, x, p[0], grad_input=o),
    }.get(name)


def _params(op, dtype):
    """The case's parameter values (cast to an integer dtype where needed)."""
    values = [PARAMS[p.name] for p in op.params]
    if dtype.kind in "iu":
        values = [int(v) for v in values]
    return values


def _registry_implementations(impls, torch):
    for case in REGISTRY_OPS:
        op = _registry.BY_NAME[case.split()[0]]
        fast, numpy_form = getattr(fastrelu, op.name), _NUMPY.get(op.name)

        def make_fast(x, g, op=op, fast=fast):
            if x.dtype.name not in op.dtype_names or x.size < REGISTRY_MIN_SIZE:
                return None
            p = _params(op, x.dtype)
            args = (x,) if op.arity == 1 else (g, x)
            return _with_out(x, lambda o: fast(*args, *p, out=o))

        def make_numpy(x, g, op=op, numpy_form=numpy_form):
            if x.dtype.name not in op.dtype_names or x.size < REGISTRY_MIN_SIZE:
                return None
            p = _params(op, x.dtype)
            if numpy_form is not None:
                return _with_out(x, lambda o: numpy_form(x, g, o, p))
            from fastrelu import _reference
            reference = getattr(_reference, op.name)
            args = (x,) if op.arity == 1 else (g, x)
            return lambda: reference(*args, *p)

        impls[case] = {"fastrelu": make_fast, "numpy": make_numpy}
        torch_form = _torch_op(torch, op.name) if torch is not None else None
        if torch_form is not None:
            def make_torch(x, g, op=op, torch_form=torch_form):
                if (x.dtype.name not in op.dtype_names or x.size < REGISTRY_MIN_SIZE
                        or x.dtype.kind == "u" or (op.arity == 2 and x.dtype.kind != "f")):
                    return None
                p = _params(op, x.dtype)
                tx = torch.from_numpy(x)
                tg = torch.from_numpy(g) if g is not None else None
                return _with_out(x, lambda o: torch_form(tx, tg, torch.from_numpy(o), p))
            impls[case]["torch"] = make_torch


def _pool_off(make):
    """``make``'s call, marked to be timed with the output pool off."""
    def make_off(x, g):
        fn = make(x, g)
        fn.pool_off = True
        return fn
    return make_off


def _single_threaded(fn):
    """Mark ``fn`` to be timed with fastrelu on one thread (set outside the timing)."""
    fn.threads = 1
    return fn


def _pure_python(x):
    if x.size > PURE_PYTHON_MAX:
        return None
    lst = x.tolist()
    zero = 0.0 if x.dtype.kind == "f" else 0
    return lambda: [max(zero, v) for v in lst]


def _with_out(x, fn):
    out = np.empty_like(x)
    fn(out)   # first touch of the pages, outside the timing
    return lambda: fn(out)


def bytes_moved(op, x):
    """Bytes a call must read and write: the basis of GB/s. (For ``x[::2]``, the
    n/2 elements read and written, although the reads touch every cache line.)"""
    if op == "relu x[::2]":
        return x.nbytes
    if op in REGISTRY_OPS:
        return x.nbytes * (_registry.BY_NAME[op.split()[0]].arity + 1)
    if op in ("relu_with_mask", "relu_backward_mask"):
        return x.nbytes * 2 + x.size // 8
    if op in ("bias_relu_backward", "add_relu out="):
        return x.nbytes * 3
    return x.nbytes * (3 if op == "relu_backward" else 2)


# --- timing --------------------------------------------------------------------------

def call_samples(fn, min_batch, batches):
    """Seconds per call of ``fn()`` in each of ``batches`` batches (after a
    warm-up), each batch lasting at least ``min_batch`` seconds."""
    fn()   # warm-up
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    per_batch = max(1, int(min_batch / once))
    samples = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(per_batch):
            fn()
        samples.append((time.perf_counter() - t0) / per_batch)
    return samples


def time_call(fn, min_batch, batches):
    """Median seconds per call of ``fn()`` over ``batches`` batches."""
    return statistics.median(call_samples(fn, min_batch, batches))


def spread(samples):
    """The interquartile range of ``samples`` relative to their median (0 for
    fewer than 4 samples: no quartiles to speak of)."""
    if len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / statistics.median(samples)


def inplace_samples(fn, x, min_batch, batches):
    """Seconds per call of ``fn(a)`` where every ``a`` is a fresh copy of x.

    A batch holds at most 1 MiB of copies, so arrays that fit in the cache are
    timed from the cache (as the out-of-place cases are), and more batches
    make up for the smaller ones.
    """
    a = x.copy()
    fn(a)   # warm-up
    per_batch = max(1, min(1000, (1 << 20) // max(x.nbytes, 1)))
    batches = batches * 10 if x.nbytes < (1 << 24) else batches
    samples = []
    for _ in range(batches):
        copies = [x.copy() for _ in range(per_batch)]
        t0 = time.perf_counter()
        for c in copies:
            fn(c)
        samples.append((time.perf_counter() - t0) / per_batch)
        del copies
    return samples


def time_inplace(fn, x, min_batch, batches):
    """Median seconds per call of ``fn(a)`` on fresh copies of x (`inplace_samples`)."""
    return statistics.median(inplace_samples(fn, x, min_batch, batches))


# --- the run ---------------------------------------------------------------------------

def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = _engine.build_info()
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "fastrelu": fastrelu.__version__}
    for name in ("torch", "numexpr", "numba", "sklearn"):
        mod = sys.modules.get(name)
        if mod is not None:
            versions[name] = getattr(mod, "__version__", "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "kernel_path": info["isa"], "threads": fastrelu.get_num_threads(),
            "versions": versions}


def run(sizes=QUICK_SIZES, dtypes=QUICK_DTYPES, ops=OPS, min_batch=0.02, batches=5,
        progress=True, threads=None, ml_dtypes=True):
    """Time every (op, dtype, size, implementation); a list of result dicts.
    With ``ml_dtypes`` (and that package installed), ``relu`` on its floats too
    (`ML_DTYPES`)."""
    threads = threads or fastrelu.get_num_threads()
    progress = progress and sys.stderr.isatty()   # no \r frames in logs and pipes
    impls = implementations(threads)
    cases = [(op, dt, n) for dt in dtypes for n in sizes for op in ops
             if op not in REGISTRY_OPS + FUSED_CASES or n >= REGISTRY_MIN_SIZE]
    if ml_dtypes and "relu" in ops:
        cases += [("relu", dt, n) for dt in ML_DTYPES for n in sizes
                  if REGISTRY_MIN_SIZE <= n <= ML_MAX_SIZE]
    results = []
    for i, (op, dt, n) in enumerate(cases, 1):
        if progress:
            _progress(i, len(cases), f"{op} {dt} n={n:.0e}")
        x = random_signed(2 * n if op == "relu x[::2]" else n, dt, seed=1)
        backward = op in ("relu_backward", "add_relu out=") or op in FUSED_CASES or (
            op in REGISTRY_OPS and _registry.BY_NAME[op.split()[0]].arity == 2)
        g = random_signed(n, dt, seed=2) if backward else None
        # in-place batches at the largest sizes would hold too many copies
        batch = min_batch if n < 10_000_000 else 0
        row = {"op": op, "dtype": dt, "n": n, "bytes": bytes_moved(op, x), "times": {},
               "spread": {}}
        for name, make in impls[op].items():
            fn = make(x, g)
            if fn is None:
                continue
            threads_set = hasattr(fn, "threads")
            with (fastrelu.num_threads(fn.threads) if threads_set else contextlib.nullcontext(),
                  _pool_limit(0) if hasattr(fn, "pool_off") else contextlib.nullcontext()):
                if op in INPLACE_CASES:
                    samples = inplace_samples(fn, x, batch, batches)
                else:
                    samples = call_samples(fn, batch, batches)
            row["times"][name] = statistics.median(samples)
            row["spread"][name] = spread(samples)
        results.append(row)
        del x, g
    if progress:
        print(file=sys.stderr)
    return results


@contextlib.contextmanager
def _pool_limit(nbytes):
    previous = fastrelu.set_pool_limit(nbytes)
    try:
        yield
    finally:
        fastrelu.set_pool_limit(previous)


def _progress(i, total, label, width=30):
    done = int(width * i / total)
    sys.stderr.write(f"\r[{'#' * done}{' ' * (width - done)}] {i}/{total} {label:<32}")
    sys.stderr.flush()


def _fmt_time(t):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:7.2f} {unit}"
    return f"{t / 1e-9:7.1f} ns"


def format_header(info, title="fastrelu benchmark report"):
    """The report's first lines: ``title``, then the machine, kernel path and versions."""
    return [
        title,
        f"  machine: {info['cpu']}, {info['cores']} cores, {info['platform']}",
        f"  fastrelu kernel path: {info['kernel_path']}, threads: {info['threads']}",
        "  versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
    ]


def format_table(results, info):
    lines = [
        *format_header(info),
        "  median time per call over the batches; IQR = interquartile range of the "
        "batches / median;",
        "  GB/s = bytes read + written / time; speed-up = NumPy time / time",
        "",
        f"{'op':<26}{'dtype':<14}{'n':>8}  {'implementation':<18}{'time':>11}{'IQR':>7}"
        f"{'GB/s':>9}{'vs numpy':>10}",
    ]
    for row in results:
        base = row["times"].get("numpy")
        for name, t in row["times"].items():
            speed = f"{base / t:9.2f}x" if base else ""
            iqr = row.get("spread", {}).get(name)
            iqr = f"{iqr:6.1%}" if iqr is not None else ""
            lines.append(f"{row['op']:<26}{row['dtype']:<14}{row['n']:>8.0e}  {name:<18}"
                         f"{_fmt_time(t):>11}{iqr:>7}{row['bytes'] / t / 1e9:9.2f}{speed:>10}")
        lines.append("")
    losses = [(r, n) for r in results for n, t in r["times"].items()
              if not n.startswith("fastrelu") and "fastrelu" in r["times"]
              and t < r["times"]["fastrelu"]
              and not n.startswith("copy")]
    if losses:
        lines.append("Where fastrelu is not the fastest:")
        for r, n in losses:
            lines.append(f"  {r['op']} {r['dtype']} n={r['n']:.0e}: {n} "
                         f"{r['times']['fastrelu'] / r['times'][n]:.2f}x faster")
    else:
        lines.append("fastrelu was the fastest implementation in every case above.")
    return "\n".join(lines)


def plot(results, info, path):
    """Throughput against bytes moved, log-log: a grid of panels (one per
    operation and dtype, at most three across), one colour per implementation
    in every panel, the cache sizes as labelled lines, and the machine and
    versions in the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in results if r["dtype"] not in ML_DTYPES]   # a size or two: no curve
    panels = list(dict.fromkeys((r["op"], r["dtype"]) for r in results))
    names = list(dict.fromkeys(n for r in results for n in r["times"]))
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    legend_rows = -(-len(names) // min(len(names), 3 * cols))
    height = 3.9 * rows + 0.25 * legend_rows + 0.7       # panels, legend, title (inches)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, height), squeeze=False)
    caches = _cache_sizes()
    for ax, (op, dt) in zip(axes.flat, panels):
        chosen = [r for r in results if r["op"] == op and r["dtype"] == dt]
        for name in names:
            pts = [(r["bytes"], r["bytes"] / r["times"][name] / 1e9)
                   for r in chosen if name in r["times"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name, color=colours[name],
                        linewidth=2.5 if name == "fastrelu" else 1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for label, size in caches.items():
            # a call moves about twice its output: the cache holds it up to here
            ax.axvline(size * 2, color="grey", linestyle=":", linewidth=0.8)
            ax.annotate(label, (size * 2, 1), xycoords=("data", "axes fraction"),
                        xytext=(2, -10), textcoords="offset points", fontsize=7,
                        color="grey")
        ax.set_title(f"{op} ({dt})", fontsize=10)
        ax.set_xlabel("bytes moved per call")
        ax.set_ylabel("GB/s")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[n], marker="o",
                          linewidth=2.5 if n == "fastrelu" else 1.2) for n in names]
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3 * cols), fontsize=8,
               frameon=False)
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    fig.suptitle(f"fastrelu {info['versions']['fastrelu']}: {info['cpu']}, "
                 f"{info['cores']} cores, {info['threads']} threads, {info['kernel_path']}\n"
                 f"{versions}", fontsize=9)
    fig.tight_layout(rect=(0, (0.25 * legend_rows + 0.1) / height, 1, 1 - 0.55 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cache_sizes():
    sizes = {}
    for level, name in ((1, "L1d"), (2, "L2"), (3, "L3")):
        index = {1: 0, 2: 2, 3: 3}[level]
        path = f"/sys/devices/system/cpu/cpu0/cache/index{index}/size"
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
        sizes[name] = int(text.rstrip("KM")) * scale
    return sizes


MAX_SIZE = 1_000_000_000    # 4 GB of float32 per operand: beyond that, not a benchmark here
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")


def _sizes(text):
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {item!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise argparse.ArgumentTypeError(f"not a whole number: {item!r}")
        if not 1 <= value <= MAX_SIZE:
            raise argparse.ArgumentTypeError(f"size {item!r} is not between 1 and {MAX_SIZE:.0e}")
        sizes.append(int(value))
    return sizes


def _dtypes(text):
    names = []
    for item in text.split(","):
        try:
            dtype = np.dtype(item)
        except TypeError:
            raise argparse.ArgumentTypeError(f"not a dtype: {item!r}") from None
        if dtype.name not in FULL_DTYPES + UNSIGNED:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a dtype fastrelu supports ({', '.join(FULL_DTYPES + UNSIGNED)})")
        names.append(dtype.name)
    return names


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _writable(path):
    """``path`` can be written (checked before the run, not after it)."""
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError:
        return False
    if not existed:
        os.remove(path)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastrelu bench",
                                     description="Time fastrelu against its peers.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="float32, sizes 10..1e8 (the default; about a minute)")
    mode.add_argument("--full", action="store_true",
                      help="every dtype and size 10..1e8")
    mode.add_argument("--pipelines", action="store_true",
                      help="instead of the per-op table, whole pipelines (a scikit-learn "
                           "MLPClassifier fit, a PyTorch MLP training step), stock and with "
                           "fastrelu's ReLU, alternately")
    mode.add_argument("--matrix", action="store_true",
                      help="instead of the per-op table, the dtype x size x operation matrix "
                           "against PyTorch's best of 1 and 2 threads, with the copy ceiling "
                           "(--sizes and --dtypes choose a part of it)")
    parser.add_argument("--sizes", type=_sizes,
                        help=f"comma-separated sizes from 1 to {MAX_SIZE:.0e}, e.g. 10,1e5,1e7")
    parser.add_argument("--dtypes", type=_dtypes,
                        help=f"comma-separated dtypes from {', '.join(FULL_DTYPES + UNSIGNED)}")
    parser.add_argument("--ops", type=lambda s: s.split(","),
                        help=f"comma-separated subset of {', '.join(OPS)}")
    parser.add_argument("--batches", type=_positive_int,
                        help="batches per median (at least 1; default 5), or with "
                             "--pipelines rounds of each version (default 4)")
    parser.add_argument("--plot", metavar="FILE.png", help="draw throughput vs size")
    parser.add_argument("--json", metavar="FILE.json", help="save the raw results")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if args.pipelines:
        for value, what in ((args.sizes, "--sizes"), (args.dtypes, "--dtypes"),
                            (args.ops, "--ops"), (args.plot, "--plot")):
            if value:
                parser.error(f"{what}: not used by --pipelines")
    for path, what in ((args.json, "--json"), (args.plot, "--plot")):
        if path and not _writable(path):
            parser.error(f"{what}: cannot write to {path!r}")
    if args.pipelines:
        return _pipelines_main(args)
    if args.matrix:
        for value, what in ((args.ops, "--ops"), (args.plot, "--plot")):
            if value:
                parser.error(f"{what}: not used by --matrix")
        return _matrix_main(args)
    sizes = args.sizes or (FULL_SIZES if args.full else QUICK_SIZES)
    dtypes = args.dtypes or (FULL_DTYPES if args.full else QUICK_DTYPES)
    ops = args.ops or OPS
    for op in ops:
        if op not in OPS:
            parser.error(f"unknown op {op!r}; choose from {OPS}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrelu[bench]'")
    info = machine_info()
    results = run(sizes, dtypes, ops, batches=args.batches or 5,
                  progress=not args.no_progress)
    print(format_table(results, info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
        print(f"raw results: {args.json}")
    if args.plot:
        plot(results, info, args.plot)
        print(f"plot: {args.plot}")
    return 0


def _pipelines_main(args):
    """``--pipelines``: the pipelines table under the machine header."""
    from fastrelu import _pipelines

    results = _pipelines.run_pipelines(rounds=args.batches or 4,
                                       progress=not args.no_progress)
    info = machine_info()      # after the run: the versions of what it imported
    print("\n".join(format_header(info, "fastrelu pipeline benchmarks")))
    print(_pipelines.format_pipelines(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "pipelines": results}, f, indent=1)
        print(f"raw results: {args.json}")
    return 0


def _matrix_main(args):
    """``--matrix``: the dtype x size x operation table against PyTorch."""
    from fastrelu import _matrix

    cells = _matrix.run_matrix(args.sizes or _matrix.SIZES, args.dtypes or _matrix.DTYPES,
                               batches=args.batches or 5, progress=not args.no_progress)
    info = machine_info()
    print(_matrix.format_matrix(cells, info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "matrix": cells,
                       "summary": _matrix.summary(cells)}, f, indent=1)
        print(f"raw results: {args.json}")
    return 0


def bench(argv=()):
    """Run the benchmark report and print it (``python -m fastrelu bench``).

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line options, e.g. ``["--full", "--plot", "relu.png"]``; see
        ``python -m fastrelu bench --help``. The default is the quick report.

    Returns
    -------
    int
        0 on success.

    Examples
    --------
    >>> import fastrelu
    >>> fastrelu.bench(["--sizes", "1e3", "--ops", "relu", "--no-progress"])  # doctest: +SKIP
    """
    return main(list(argv))
