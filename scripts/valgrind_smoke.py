"""A small workload for scripts/valgrind.sh: every public function, every dtype,
sizes 0..40 and a few larger ones, contiguous / strided / reversed /
byte-swapped / unaligned, in place and out of place, with the dispatch
thresholds at zero (GIL release, two threads, streaming stores) and as
shipped, on every instruction-set level this CPU (as valgrind reports it)
runs; and every documented error path. Results are checked against plain
NumPy so an uninitialised or misplaced byte also fails here.
"""
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests")]

import fastrelu  # noqa: E402
from fastrelu import _engine  # noqa: E402
from reliability_helpers import (DTYPES, assert_bits, native, random_bits,  # noqa: E402
                                 ref_backward, ref_grad, ref_relu)

SIZES = list(range(41)) + [257, 1100]


def layouts(a):
    yield "C", a.copy()
    buf = np.zeros(2 * a.size + 1, a.dtype)
    buf[1::2] = a
    yield "step2", buf[1::2]
    yield "reversed", a[::-1].copy()[::-1]
    if a.dtype.itemsize > 1:
        yield "byteswapped", a.byteswap().view(a.dtype.newbyteorder())
        raw = np.zeros(a.nbytes + 1, np.uint8)
        u = raw[1:].view(a.dtype)
        u[...] = a
        yield "unaligned", u


def run_level(rng):
    calls = 0
    for dt in DTYPES:
        for n in SIZES:
            x0, g0 = random_bits(rng, dt, n), random_bits(rng, dt, n)
            er, eg, eb = ref_relu(x0), ref_grad(x0), ref_backward(g0, x0)
            for name, x in layouts(x0):
                assert_bits(fastrelu.relu(x), er, f"relu {name}")
                assert_bits(fastrelu.relu_grad(x), eg, f"relu_grad {name}")
                assert_bits(fastrelu.relu_backward(g0, x), eb, f"relu_backward {name}")
                o = np.empty(n, dt)
                assert_bits(fastrelu.relu(x, out=o), er, f"relu out {name}")
                assert_bits(fastrelu.relu_backward(g0, x, out=o), eb, "bwd out")
                if x.flags.writeable:
                    y = x.copy() if name == "C" else x
                    fastrelu.relu_(y)
                    assert_bits(native(y), er, f"relu_ {name}")
                calls += 6
            a = x0.copy()
            fastrelu.relu(a[1:], out=a[:-1])          # partial overlap
            assert_bits(a[:-1], ref_relu(x0[1:]), "overlap")
            calls += 1
    return calls


def run_errors():
    x = np.ones(8, np.float32)
    ro = x.copy()
    ro.flags.writeable = False
    cases = [
        (TypeError, lambda: fastrelu.relu(np.zeros(3, bool))),
        (TypeError, lambda: fastrelu.relu(x, out=np.zeros(8, np.int32))),
        (TypeError, lambda: fastrelu.relu(x, out=[0] * 8)),
        (ValueError, lambda: fastrelu.relu(x, out=np.zeros(7, np.float32))),
        (ValueError, lambda: fastrelu.relu(x, out=ro)),
        (ValueError, lambda: fastrelu.relu_(ro)),
        (TypeError, lambda: fastrelu.relu_([1.0])),
        (TypeError, lambda: fastrelu.relu_backward(x, x.astype(np.float64))),
        (ValueError, lambda: fastrelu.relu_backward(x[1:], x)),
        (TypeError, lambda: fastrelu.relu_grad(np.zeros(2, np.complex64))),
    ]
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
        for low in (True, False):
            previous = _engine.thresholds(0, 1, 0) if low else None
            try:
                with fastrelu.num_threads(2 if low else None):
                    total += run_level(rng)
            finally:
                if previous:
                    _engine.thresholds(**previous)
    total += run_errors()
    print(f"valgrind smoke: levels {levels}, {total} checked calls: OK")


if __name__ == "__main__":
    main()
