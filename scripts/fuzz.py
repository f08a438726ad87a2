#!/usr/bin/env python3
"""Fuzz fastrelu's public functions for a time budget.

Runs the harness of tests/fuzz_harness.py (every operation of the registry
and its in-place twin, with generated and invalid parameters; arbitrary
dtypes, byte orders, shapes, strides, offsets, read-only flags, containers
and ``out`` modes; the reference's results (fastrelu._reference) or the
documented TypeError / ValueError, memory untouched on errors) under atheris (coverage-guided, libFuzzer) if it is installed, else
under Hypothesis, until ``--seconds`` have passed.

    python scripts/fuzz.py --seconds 60                # atheris if available
    python scripts/fuzz.py --seconds 60 --engine hypothesis
    python scripts/fuzz.py --seconds 600 --engine atheris -- -jobs=2   # extra libFuzzer args

Exit status 0 when no failure was found; otherwise the failing case is printed
and the status is non-zero (atheris also writes a crash-* reproducer file,
which ``python scripts/fuzz.py --engine atheris -- crash-<hash>`` replays).
Uses the in-place build in src/ (run ``python setup.py build_ext --inplace``).
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def have_atheris():
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(seconds, extra):
    import atheris
    # Coverage feedback from fastrelu's Python code (the validation in _general).
    # The harness itself is not instrumented: atheris' comparison tracing of its
    # 256 KiB arena snapshots makes the fuzzer's memory grow without bound.
    with atheris.instrument_imports(include=["fastrelu"]):
        import fastrelu  # noqa: F401
    import fuzz_harness
    from fuzz_harness import Source, run_case

    class AtherisSource(Source):
        def __init__(self, fdp):
            self.fdp = fdp

        def integer(self, lo, hi):
            return self.fdp.ConsumeIntInRange(lo, hi)

        def raw(self, n):
            return self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, n))

    def one_input(data):
        run_case(AtherisSource(atheris.FuzzedDataProvider(data)))

    assert fuzz_harness  # instrumented above
    args = [sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=4096",
            "-timeout=60", "-print_final_stats=1", *extra]
    atheris.Setup(args, one_input)
    atheris.Fuzz()          # returns (exit 0) when the time is up and nothing failed
    return 0


def run_hypothesis(seconds):
    from hypothesis import HealthCheck, given, settings, strategies as st
    from fuzz_harness import HypothesisSource, run_case

    count = [0]

    @settings(max_examples=2000, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        count[0] += 1
        run_case(HypothesisSource(data))

    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end:
        rounds += 1
        try:
            fuzz()
        except Exception as e:  # noqa: BLE001 - report and fail
            print(f"FAILURE after {count[0]} cases:\n{type(e).__name__}: {e}", file=sys.stderr)
            return 1
    print(f"hypothesis: {count[0]} cases in {rounds} rounds, {seconds} s, no failure")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=60, help="time budget (default 60)")
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    p.add_argument("libfuzzer_args", nargs="*", help="extra arguments for libFuzzer, after --")
    a = p.parse_args()
    engine = a.engine
    if engine == "auto":
        engine = "atheris" if have_atheris() else "hypothesis"
    if engine == "atheris" and not have_atheris():
        print("atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    print(f"fuzzing fastrelu with {engine} for {a.seconds} s (pid {os.getpid()})", flush=True)
    if engine == "atheris":
        return run_atheris(a.seconds, a.libfuzzer_args)
    return run_hypothesis(a.seconds)


if __name__ == "__main__":
    sys.exit(main())
