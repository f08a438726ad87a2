"""``python -m fastrelu``, as a user runs it (fresh processes): every bad
argument is a usage error -- exit status 2 and one line naming the argument --
before any work; ``--help`` exits 0; every supported dtype runs."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fastrelu

# the fastrelu under test, installed or in-tree
ENV = dict(os.environ, PYTHONPATH=str(Path(fastrelu.__file__).resolve().parent.parent))


def run(*args, timeout=120):
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "fastrelu", *args], env=ENV,
                         capture_output=True, text=True, timeout=timeout)
    return res, time.perf_counter() - start


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["bench", "--help"]])
def test_help_exits_0(args):
    res, _ = run(*args)
    assert res.returncode == 0, res.stderr
    assert "usage" in res.stdout.lower()


@pytest.mark.parametrize("args, names", [
    (["bench", "--dtypes", "complex64"], "--dtypes"),
    (["bench", "--dtypes", "bool"], "--dtypes"),
    (["bench", "--dtypes", "foo"], "--dtypes"),
    (["bench", "--dtypes", "float32,object"], "--dtypes"),
    (["bench", "--sizes", "-5"], "--sizes"),
    (["bench", "--sizes", "0"], "--sizes"),
    (["bench", "--sizes", "1e30"], "--sizes"),
    (["bench", "--sizes", "2.5"], "--sizes"),
    (["bench", "--sizes", "nan"], "--sizes"),
    (["bench", "--sizes", "ten"], "--sizes"),
    (["bench", "--batches", "0"], "--batches"),
    (["bench", "--batches", "-3"], "--batches"),
    (["bench", "--batches", "x"], "--batches"),
    (["bench", "--ops", "foo"], "foo"),
    (["bench", "--json", "/nonexistent-dir/r.json"], "--json"),
    (["bench", "--plot", "/nonexistent-dir/r.png"], "--plot"),
    (["bench", "--pipelines", "--sizes", "10"], "--sizes"),
    (["bench", "--pipelines", "--ops", "relu"], "--ops"),
    (["bench", "--pipelines", "--plot", "r.png"], "--plot"),
    (["bench", "--pipelines", "--full"], "--full"),
    (["bench", "--matrix", "--ops", "relu"], "--ops"),
    (["bench", "--matrix", "--plot", "r.png"], "--plot"),
    (["bench", "--matrix", "--pipelines"], "--pipelines"),
    (["bench", "--no-such-option"], "--no-such-option"),
    (["frobnicate"], "frobnicate"),
    (["config", "extra"], "extra"),
])
def test_bad_arguments_are_usage_errors_before_any_work(args, names):
    res, seconds = run(*args)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert names in last, last
    assert res.stdout == ""              # no report started
    assert seconds < 30                  # refused up front, not after a run


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32",
                                   "int64", "uint8", "uint16", "uint32", "uint64"])
def test_every_supported_dtype_runs(dtype):
    res, _ = run("bench", "--dtypes", dtype, "--sizes", "100", "--ops", "relu,relu_",
                 "--batches", "1", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert dtype in res.stdout and "Traceback" not in res.stderr


def test_report_to_a_pipe_has_no_progress_frames():
    res, _ = run("bench", "--sizes", "100", "--ops", "relu", "--batches", "1")
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and "\r" not in res.stdout


def test_config_prints_the_configuration():
    res, _ = run("config")
    assert res.returncode == 0
    assert "kernel path" in res.stdout and "threads" in res.stdout


def test_pipelines_without_sklearn_print_the_note():
    """scikit-learn missing (an import of it fails): its pipeline is one line
    saying so, and the report still runs the rest."""
    script = ("import functools, sys; sys.modules['sklearn'] = None\n"
              "from fastrelu import _pipelines\n"
              "_pipelines.run_pipelines = functools.partial(_pipelines.run_pipelines, steps=1)\n"
              "from fastrelu._bench import main\n"
              "sys.exit(main(['--pipelines', '--batches', '1', '--no-progress']))")
    res = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "sklearn-mlp: skipped: scikit-learn is not installed" in res.stdout
    assert "Traceback" not in res.stderr


def test_import_does_not_import_the_pipelines_libraries():
    """scikit-learn and torch are imported by a pipeline run only, never by
    ``import fastrelu`` (nor by the report's modules)."""
    script = ("import sys, fastrelu, fastrelu._bench, fastrelu._pipelines\n"
              "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
