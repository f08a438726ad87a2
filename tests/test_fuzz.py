"""Hypothesis drives the fuzzing harness of tests/fuzz_harness.py: arbitrary
dtypes (supported and not), byte orders, shapes, strides (negative, zero,
unaligned, overlapping), byte offsets into one shared buffer, read-only flags,
containers and ``out`` modes. Every call returns the oracle's bits and writes
nothing outside its output, or raises the documented TypeError / ValueError
without touching memory. scripts/fuzz.py runs the same harness for longer
(atheris or Hypothesis)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastrelu
from fuzz_harness import HypothesisSource, run_case


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_fuzz_public_functions(data):
    run_case(HypothesisSource(data))


# --- found by the harness --------------------------------------------------------

@pytest.mark.parametrize("out_dtype", ["complex64", "complex128", "longdouble", "object",
                                       "bool"])
@pytest.mark.parametrize("func", ["relu", "relu_grad", "relu_backward"])
def test_out_of_unsupported_dtype_is_rejected_for_float64(func, out_dtype):
    """out= of an unsupported dtype must raise the documented TypeError before
    anything is written. With a float64 input (or a list, which becomes float64)
    the check in fastrelu._api._result compares ``None != dtype`` -- and NumPy
    reads None as float64 -- so the call went on into the ufunc, which cast the
    result into complex / longdouble / object outputs (or failed with NumPy's
    casting error for bool)."""
    x = np.array([-1.0, 2.0, np.nan])
    out = np.full(3, 7, dtype=out_dtype)
    before = out.copy()
    fn = getattr(fastrelu, func)
    args = (x, x) if func == "relu_backward" else (x,)
    with pytest.raises(TypeError, match="out has dtype"):
        fn(*args, out=out)
    assert (out == before).all()
