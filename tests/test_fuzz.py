"""Hypothesis drives the fuzzing harness of tests/fuzz_harness.py: every
operation of the registry and its in-place twin, with generated (and now and
then invalid) parameters, on arbitrary dtypes (supported and not), byte
orders, shapes, strides (negative, zero, unaligned, overlapping), byte
offsets into one shared buffer, read-only flags, containers and ``out``
modes, on any instruction-set level with the thresholds as shipped or at 0.
Every call returns the reference's bits and writes nothing outside its
output, or raises the documented TypeError / ValueError without touching
memory. scripts/fuzz.py runs the same harness for longer (atheris or
Hypothesis). (An out of an unsupported dtype for float64 data, which the
harness once found, is pinned in test_errors.py.)"""
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz_harness import HypothesisSource, run_case


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_fuzz_public_functions(data):
    run_case(HypothesisSource(data))
