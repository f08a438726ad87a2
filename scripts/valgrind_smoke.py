"""A small workload for scripts/valgrind.sh: every operation of the registry
and its in-place twin, every dtype it takes, with its generated parameters,
sizes 0..17, the vector edges and a few larger ones, contiguous / strided /
reversed / byte-swapped / unaligned, in place and out of place, with the
dispatch thresholds at zero (GIL release, streaming stores, and two threads
for an output of more than two 64 KiB thread chunks) and as shipped, on every
instruction-set level this CPU (as valgrind reports it) runs; and every
documented error path. Results are checked against the reference
(fastrelu._reference, plain NumPy) so an uninitialised or misplaced byte also
fails here.
"""
import os
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests")]

import fastrelu  # noqa: E402
from fastrelu import _engine  # noqa: E402
from helpers import (OPS, assert_same, byteswapped, call, call_inplace,  # noqa: E402
                     expected, param_cycle, random_values, threaded_size, to_native,
                     unaligned)

SIZES = list(range(18)) + [31, 33, 63, 65, 257, 1100]
if os.environ.get("FASTRELU_VALGRIND_QUICK"):      # valgrind.sh --quick: the vector edges
    SIZES = [0, 1, 3, 7, 8, 9, 15, 16, 17, 33, 65, 1100]


def layouts(a):
    yield "C", a.copy()
    buf = np.zeros(2 * a.size + 1, a.dtype)
    buf[1::2] = a
    yield "step2", buf[1::2]
    yield "reversed", a[::-1].copy()[::-1]
    if a.dtype.itemsize > 1:
        yield "byteswapped", byteswapped(a)
        yield "unaligned", unaligned(a)


def check(op, dt, n, params, rng, all_layouts=True):
    """``op`` on ``n`` random elements of ``dt`` in every layout; returns the
    number of checked calls."""
    arrays0 = tuple(random_values(rng, dt, n) for _ in op.inputs)
    want = expected(op, arrays0, params)
    calls = 0
    x_layouts = layouts(arrays0[-1]) if all_layouts else [("C", arrays0[-1].copy())]
    for name, x in x_layouts:
        arrays = arrays0[:-1] + (x,)
        assert_same(call(op, arrays, params), want, f"{op.name} {name}")
        o = np.empty(n, dt)
        assert_same(call(op, arrays, params, out=o), want, f"{op.name} out= {name}")
        calls += 2
        if op.arity == 2:
            g = arrays0[0].copy()
            assert_same(call(op, (g, x), params, out=g), want, f"{op.name} out=g {name}")
            calls += 1
        if op.inplace:
            y = x.copy() if name == "C" else x
            call_inplace(op, y, params)
            assert_same(to_native(y), want, f"{op.inplace_name} {name}")
            calls += 1
    if n > 1:
        a = arrays0[-1].copy()                      # out partially overlapping x
        call(op, tuple(b[:-1] for b in arrays0[:-1]) + (a[1:],), params, out=a[:-1])
        assert_same(a[:-1], expected(op, tuple(b[:-1] for b in arrays0[:-1])
                                     + (arrays0[-1][1:],), params), f"{op.name} overlap")
        calls += 1
    return calls


def run_level(rng, low):
    calls = 0
    for op in OPS:
        for dt in op.dtype_names:
            for n, params in zip(SIZES, param_cycle(op, dt, len(SIZES))):
                calls += check(op, dt, n, params, rng)
            if low:
                calls += check(op, dt, threaded_size(dt), param_cycle(op, dt, 1)[0], rng,
                               all_layouts=False)
    return calls


def run_errors():
    cases = []
    for op in OPS:
        dt = "float32"
        x = np.ones(8, dt)
        xs = (x,) * op.arity
        ro = x.copy()
        ro.flags.writeable = False
        params = param_cycle(op, dt, 1)[0]
        cases += [
            (TypeError, lambda op=op, params=params: call(op, (np.zeros(3, bool),) * op.arity,
                                                          params)),
            (TypeError, lambda op=op, xs=xs, params=params: call(
                op, xs, params, out=np.zeros(8, np.int32))),
            (TypeError, lambda op=op, xs=xs, params=params: call(op, xs, params, out=[0] * 8)),
            (ValueError, lambda op=op, xs=xs, params=params: call(
                op, xs, params, out=np.zeros(7, np.float32))),
            (ValueError, lambda op=op, xs=xs, ro=ro, params=params: call(op, xs, params, out=ro)),
            (TypeError, lambda op=op, params=params: call(op, (np.zeros(2, np.complex64),)
                                                          * op.arity, params)),
        ]
        if op.inplace:
            cases += [(ValueError, lambda op=op, ro=ro, params=params: call_inplace(op, ro,
                                                                                    params)),
                      (TypeError, lambda op=op, params=params: call_inplace(op, [1.0], params))]
        if op.arity == 2:
            cases += [(TypeError, lambda op=op, x=x, params=params: call(
                          op, (x, x.astype(np.float64)), params)),
                      (ValueError, lambda op=op, x=x, params=params: call(op, (x[1:], x),
                                                                          params))]
        if op.params:
            cases.append((TypeError, lambda op=op, xs=xs, params=params: call(
                op, xs, ("1",) + params[1:])))
    for exc, fn in cases:
        try:
            fn()
        except exc:
            continue
        raise AssertionError(f"no {exc.__name__}")
    return len(cases)


def main():
    rng = np.random.default_rng(1)
    levels = _engine.supported_isa_levels()
    total = 0
    for level in levels:
        _engine.use_isa(level)
        # the thresholds as shipped (one thread, plain stores) on the best level
        # only: the same loops as the low-threshold pass, which every level runs
        for low in (True, False) if level == levels[-1] else (True,):
            previous = _engine.thresholds(0, 1, 0, cold_parallel_min_bytes=1) if low else None
            try:
                with fastrelu.num_threads(2 if low else None):
                    total += run_level(rng, low)
            finally:
                if previous:
                    _engine.thresholds(**previous)
    total += run_errors()
    print(f"valgrind smoke: levels {levels}, {total} checked calls: OK")


if __name__ == "__main__":
    main()
