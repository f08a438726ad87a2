"""The public surface: __version__, show_config, __all__, the calling
conventions of every function of the registry (positional-only inputs,
parameters by position or name, ``out`` by keyword or position) and the
loops of every ufunc. (The signatures themselves: test_registry.py.)"""
import inspect
import io

import numpy as np
import pytest

import fastrelu
from fastrelu import _engine, ufuncs
from fastrelu._registry import FUNCTION_NAMES
from helpers import (INPLACE_OPS, OPS, assert_same, call, call_inplace, expected, op_id,
                     param_sets)

UTILITIES = ["get_num_threads", "set_num_threads", "num_threads", "show_config", "bench",
             "__version__", "set_pool_limit", "get_pool_limit", "free_pool", "pool_stats"]


def test_version_is_a_string():
    """__version__ is a non-empty str like '0.1.0'."""
    assert isinstance(fastrelu.__version__, str)
    assert fastrelu.__version__
    assert fastrelu.__version__.split(".")[0].isdigit()


def test_all_lists_existing_names():
    """Everything documented (the registry's functions and the utilities) is
    exported, and everything in __all__ exists."""
    assert set(fastrelu.__all__) == set(FUNCTION_NAMES) | set(UTILITIES)
    for name in fastrelu.__all__:
        assert hasattr(fastrelu, name)


def test_show_config_prints_kernel_path(capsys):
    """show_config() prints the version and the kernel path (instruction-set level)
    in use, and returns None."""
    assert fastrelu.show_config() is None
    text = capsys.readouterr().out
    assert fastrelu.__version__ in text
    lines = [line for line in text.splitlines() if "kernel path" in line]
    assert len(lines) == 1
    level = _engine.build_info()["isa"]
    assert level in lines[0]
    assert level in _engine.supported_isa_levels()
    assert "numpy" in text and np.__version__ in text


def test_show_config_to_file():
    """show_config(file=...) writes there instead of stdout."""
    buf = io.StringIO()
    fastrelu.show_config(file=buf)
    assert "kernel path" in buf.getvalue()


def _operands(op):
    x = np.array([-1.0, 2.0, 7.0])
    return (x[::-1].copy(), x)[-op.arity:]


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_calling_conventions(op):
    """The inputs are positional-only (by name: TypeError); a required input
    or parameter missing, an extra positional argument or an unknown keyword
    is a TypeError; the parameters go by position or name, ``out`` by keyword
    or position, with the same result."""
    f = getattr(fastrelu, op.name)
    arrays = _operands(op)
    params = param_sets(op, "float64")[0]
    want = expected(op, arrays, params)
    with pytest.raises(TypeError):
        f(*arrays[:-1], *params, x=arrays[-1])
    with pytest.raises(TypeError):
        f(*arrays[:-1])
    with pytest.raises(TypeError):
        f(*arrays, *params, np.empty(3), np.empty(3))
    with pytest.raises(TypeError):
        f(*arrays, *params, bogus=1)
    required = [p for p in op.params if p.default is None]
    if required:
        with pytest.raises(TypeError):
            f(*arrays)
    assert_same(call(op, arrays, params, keywords=True), want)
    out = np.empty(3)
    assert f(*arrays, *params, out=out) is out
    assert_same(out, want)
    out2 = np.empty(3)
    assert f(*arrays, *params, out2) is out2
    assert_same(out2, want)
    assert_same(f(*arrays, *params, out=None), want)


@pytest.mark.parametrize("op", [op for op in OPS if any(p.default is not None
                                                        for p in op.params)], ids=op_id)
def test_default_parameters(op):
    """Parameters with a default (``negative_slope=0.01``) may be left out."""
    arrays = _operands(op)
    defaults = tuple(p.default for p in op.params)
    assert_same(call(op, arrays), expected(op, arrays, defaults))
    if op.inplace:
        x = arrays[-1].copy()
        assert_same(call_inplace(op, x), expected(op, arrays, defaults))


@pytest.mark.parametrize("op", INPLACE_OPS, ids=op_id)
def test_inplace_calling_conventions(op):
    """The in-place twin takes x (positional-only) and the parameters: no out,
    nothing extra; x is unchanged by the refused calls."""
    f = getattr(fastrelu, op.inplace_name)
    x = np.array([-1.0, 2.0])
    params = param_sets(op, "float64")[0]
    with pytest.raises(TypeError):
        f(*params, x=x)
    with pytest.raises(TypeError):
        f()
    with pytest.raises(TypeError):
        f(x, *params, np.empty(2))
    with pytest.raises(TypeError):
        f(x, *params, out=np.empty(2))
    assert x.tolist() == [-1.0, 2.0]


def test_config_function_signatures():
    """The thread functions have inspectable signatures too."""
    assert list(inspect.signature(fastrelu.set_num_threads).parameters) == ["n"]
    assert list(inspect.signature(fastrelu.num_threads).parameters) == ["n"]
    assert list(inspect.signature(fastrelu.get_num_threads).parameters) == []


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_ufunc_loops(op):
    """The ufunc of every op is an np.ufunc with one input per operand and
    parameter, and a loop for every dtype the op takes: the operands and the
    output of that type, a slope operand float32 (float64 for float64 data),
    a bound or value operand of the data's type."""
    uf = getattr(ufuncs, op.name)
    assert isinstance(uf, np.ufunc)
    assert (uf.nin, uf.nout) == (op.arity + len(op.params), 1)
    loops = set()
    for t in uf.types:
        ins, out = t.split("->")
        data, params = ins[:op.arity], ins[op.arity:]
        assert set(data) == {out}, t
        slope = "d" if np.dtype(out) == np.float64 else "f"
        assert list(params) == [slope if p.kind == "slope" else out for p in op.params], t
        loops.add(np.dtype(out).name)
    assert loops == set(op.dtype_names)
    assert uf.__doc__
