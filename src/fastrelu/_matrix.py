"""The dtype x size x operation matrix against PyTorch: ``python -m fastrelu bench --matrix``.

Every cell times fastrelu and PyTorch's best of 1 and 2 threads (the peer users
compare against), numba's parallel loop where it applies, and two copies of the
same bytes in the same run (``np.copyto`` and a 2-thread copy): the machine's
ceiling for a call that reads and writes that much. The ratio is PyTorch's time
over fastrelu's; a cell is

* ``win``      at 1.1x or better;
* ``ceiling``  when both fastrelu and PyTorch are within 5% of the copy
  ceiling, or faster than it: both run at the machine's limit there;
* ``tie``      from 0.95x to 1.1x, away from the ceiling;
* ``LOSS``     below 0.95x.
"""
import sys

import numpy as np

import fastrelu
from fastrelu import _bench

DTYPES = ("float16", "float32", "float64", "int8")
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
OPS = ("relu", "relu out=", "relu_ steady", "relu_backward", "relu_backward out=")
#: Cells meet the target at this ratio (or at the ceiling); below LOSS_RATIO they lose.
WIN_RATIO = 1.1
LOSS_RATIO = 0.95
CEILING_SLACK = 1.05


def streams(op):
    """Arrays a call reads or writes (each of x.nbytes)."""
    return 3 if op.startswith("relu_backward") else 2


def _fastrelu(op, x, g, o):
    return {
        "relu": lambda: fastrelu.relu(x),
        "relu out=": lambda: fastrelu.relu(x, out=o),
        "relu_ steady": lambda: fastrelu.relu_(x),
        "relu_backward": lambda: fastrelu.relu_backward(g, x),
        "relu_backward out=": lambda: fastrelu.relu_backward(g, x, out=o),
    }[op]


def _torch(torch, op, x, g, o):
    tx, tg, to = (torch.from_numpy(a) if a is not None else None for a in (x, g, o))
    aten = torch.ops.aten
    return {
        "relu": lambda: torch.relu(tx),
        "relu out=": lambda: torch.clamp_min(tx, 0, out=to),
        "relu_ steady": lambda: torch.relu_(tx),
        "relu_backward": lambda: aten.threshold_backward(tg, tx, 0),
        "relu_backward out=": lambda: aten.threshold_backward.grad_input(tg, tx, 0,
                                                                         grad_input=to),
    }[op]


def _numba_impls():
    kernels = _bench.numba_kernels()
    if kernels is None:
        return None
    relu_into, backward_into = kernels

    def make(op, x, g, o):
        if x.dtype == np.float16:
            return None                       # numba has no float16 arithmetic
        relu_into(x[:2], np.empty_like(x[:2]))    # compile outside the timing
        backward_into(g[:2], x[:2], np.empty_like(x[:2]))
        return {
            "relu": lambda: relu_into(x, np.empty_like(x)),
            "relu out=": lambda: relu_into(x, o),
            "relu_ steady": lambda: relu_into(x, x),
            "relu_backward": lambda: backward_into(g, x, np.empty_like(x)),
            "relu_backward out=": lambda: backward_into(g, x, o),
        }[op]
    return make


def _time(fn, batches):
    return _bench.time_call(fn, 0.02, batches)


def _verdict(ratio, fast, torch_best, ceiling):
    if ratio >= WIN_RATIO:
        return "win"
    if max(fast, torch_best) <= ceiling * CEILING_SLACK:
        return "ceiling"
    if ratio >= LOSS_RATIO:
        return "tie"
    return "LOSS"


def run_matrix(sizes=SIZES, dtypes=DTYPES, ops=OPS, batches=5, progress=True):
    """Time every cell; a list of dicts (op, dtype, n, bytes, times, ratio, verdict).

    ``times`` holds fastrelu, torch 1 thread and torch 2 threads (when torch is
    installed), numba (when installed), copy and copy x2 threads; ``ceiling`` is
    the time the cell's bytes take at the faster copy's throughput."""
    torch = _bench._optional("torch")
    numba = _numba_impls()
    copy2 = _bench._pool_copy(2)
    progress = progress and sys.stderr.isatty()
    cases = [(dt, n, op) for dt in dtypes for n in sizes for op in ops]
    cells = []
    for i, (dt, n, op) in enumerate(cases, 1):
        if progress:
            _bench._progress(i, len(cases), f"{op} {dt} n={n:.0e}")
        x = _bench.random_signed(n, dt, seed=1)
        g = _bench.random_signed(n, dt, seed=2)
        o = np.empty_like(x)
        o[...] = 0                          # mapped before any timing
        if op == "relu_ steady":
            x = np.maximum(x, 0)            # already relu'd: every call writes the same
        nbytes = streams(op) * x.nbytes
        times = {"fastrelu": _time(_fastrelu(op, x, g, o), batches)}
        if torch is not None:
            previous = torch.get_num_threads()
            for threads in (1, 2):
                torch.set_num_threads(threads)
                times[f"torch {threads} thread{'s' if threads > 1 else ''}"] = _time(
                    _torch(torch, op, x, g, o), batches)
            torch.set_num_threads(previous)
        if numba is not None:
            fn = numba(op, x, g, o)
            if fn is not None:
                times["numba"] = _time(fn, batches)
        c = np.empty_like(x)
        times["copy"] = _time(lambda: np.copyto(c, x), batches)
        times["copy x2 threads"] = _time(lambda: copy2(c, x), batches)
        copy_rate = 2 * x.nbytes / min(times["copy"], times["copy x2 threads"])
        ceiling = nbytes / copy_rate
        torch_best = min((t for k, t in times.items() if k.startswith("torch")), default=None)
        ratio = torch_best / times["fastrelu"] if torch_best else None
        cells.append({"op": op, "dtype": dt, "n": n, "bytes": nbytes, "times": times,
                      "ceiling": ceiling, "ratio": ratio,
                      "verdict": _verdict(ratio, times["fastrelu"], torch_best, ceiling)
                      if ratio is not None else "no torch"})
        del x, g, o, c
    if progress:
        print(file=sys.stderr)
    return cells


def summary(cells):
    """Counts of each verdict, and whether the targets hold: no cell below
    LOSS_RATIO (unless at the ceiling), 90% at WIN_RATIO or the ceiling."""
    rated = [c for c in cells if c["ratio"] is not None]
    counts = {v: sum(c["verdict"] == v for c in rated) for v in ("win", "ceiling", "tie", "LOSS")}
    met = counts["win"] + counts["ceiling"]
    return {"cells": len(rated), **counts,
            "share_met": met / len(rated) if rated else None,
            "targets_met": bool(rated) and counts["LOSS"] == 0 and met >= 0.9 * len(rated)}


def format_matrix(cells, info):
    lines = _bench.format_header(info, "fastrelu vs PyTorch: dtype x size x operation")
    lines += [
        "  ratio = PyTorch's best of 1 and 2 threads / fastrelu (above 1: fastrelu faster);",
        "  ceiling = the cell's bytes at the faster copy's throughput (np.copyto, 2-thread copy)",
        "",
        f"{'dtype':<9}{'n':>7}  {'op':<20}{'fastrelu':>11}{'torch best':>12}{'numba':>11}"
        f"{'ceiling':>11}{'ratio':>8}  verdict",
    ]
    for c in cells:
        t = c["times"]
        torch_best = min((v for k, v in t.items() if k.startswith("torch")), default=None)
        fmt = _bench._fmt_time
        lines.append(
            f"{c['dtype']:<9}{c['n']:>7.0e}  {c['op']:<20}{fmt(t['fastrelu']):>11}"
            f"{fmt(torch_best) if torch_best else '':>12}"
            f"{fmt(t['numba']) if 'numba' in t else '':>11}{fmt(c['ceiling']):>11}"
            f"{(format(c['ratio'], '.2f') + 'x') if c['ratio'] else '':>8}  {c['verdict']}")
    s = summary(cells)
    lines.append("")
    if s["cells"]:
        lines.append(f"{s['cells']} cells: {s['win']} win (>= {WIN_RATIO}x), {s['ceiling']} at "
                     f"the copy ceiling, {s['tie']} tie, {s['LOSS']} LOSS (< {LOSS_RATIO}x); "
                     f"{s['share_met']:.0%} at {WIN_RATIO}x or the ceiling; targets "
                     f"{'met' if s['targets_met'] else 'NOT met'}")
    else:
        lines.append("PyTorch is not installed: no ratios (pip install torch).")
    return "\n".join(lines)

