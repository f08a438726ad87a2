"""The public surface: __version__, show_config, the signatures (positional-only
inputs, ``out`` keyword), inspect.signature, __all__, and the three ufuncs."""
import inspect
import io

import numpy as np
import pytest

import fastrelu
from fastrelu import ufuncs
import oracle
from fastrelu import _engine
from oracle import assert_same

PUBLIC = ["relu", "relu_", "relu_grad", "relu_backward", "get_num_threads",
          "set_num_threads", "num_threads", "show_config", "__version__"]


def test_version_is_a_string():
    """__version__ is a non-empty str like '0.1.0'."""
    assert isinstance(fastrelu.__version__, str)
    assert fastrelu.__version__
    assert fastrelu.__version__.split(".")[0].isdigit()


def test_all_lists_existing_names():
    """Everything documented is exported and everything in __all__ exists."""
    for name in PUBLIC:
        assert name in fastrelu.__all__
    for name in fastrelu.__all__:
        assert hasattr(fastrelu, name)


def test_show_config_prints_kernel_path(capsys):
    """show_config() prints the version and the kernel path (instruction-set level) in use,
    and returns None."""
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


UNARY = [fastrelu.relu, fastrelu.relu_grad]


@pytest.mark.parametrize("func", UNARY, ids=lambda f: f.__name__)
def test_unary_positional_only(func):
    """x is positional-only (x=... is a TypeError); out may be given by keyword or
    position; extra arguments are a TypeError."""
    x = np.array([-1.0, 2.0])
    with pytest.raises(TypeError):
        func(x=x)
    with pytest.raises(TypeError):
        func()
    with pytest.raises(TypeError):
        func(x, np.empty(2), np.empty(2))
    with pytest.raises(TypeError):
        func(x, bogus=1)
    out = np.empty(2)
    assert func(x, out=out) is out
    out2 = np.empty(2)
    assert func(x, out2) is out2
    assert_same(out, out2)
    assert_same(func(x, out=None), out)


def test_relu_inplace_positional_only():
    """relu_ takes exactly one positional argument."""
    x = np.array([-1.0, 2.0])
    with pytest.raises(TypeError):
        fastrelu.relu_(x=x)
    with pytest.raises(TypeError):
        fastrelu.relu_()
    with pytest.raises(TypeError):
        fastrelu.relu_(x, np.empty(2))
    with pytest.raises(TypeError):
        fastrelu.relu_(x, out=np.empty(2))
    assert x.tolist() == [-1.0, 2.0]


def test_relu_backward_positional_only():
    """grad_output and x are positional-only; out by keyword or position."""
    g, x = np.array([5.0, 6.0]), np.array([-1.0, 2.0])
    with pytest.raises(TypeError):
        fastrelu.relu_backward(grad_output=g, x=x)
    with pytest.raises(TypeError):
        fastrelu.relu_backward(g, x=x)
    with pytest.raises(TypeError):
        fastrelu.relu_backward(g)
    out = np.empty(2)
    assert fastrelu.relu_backward(g, x, out=out) is out
    assert fastrelu.relu_backward(g, x, out) is out
    assert out.tolist() == [0.0, 6.0]


@pytest.mark.parametrize("name, params", [
    ("relu", [("x", "POSITIONAL_ONLY", inspect.Parameter.empty),
              ("out", "POSITIONAL_OR_KEYWORD", None)]),
    ("relu_", [("x", "POSITIONAL_ONLY", inspect.Parameter.empty)]),
    ("relu_grad", [("x", "POSITIONAL_ONLY", inspect.Parameter.empty),
                   ("out", "POSITIONAL_OR_KEYWORD", None)]),
    ("relu_backward", [("grad_output", "POSITIONAL_ONLY", inspect.Parameter.empty),
                       ("x", "POSITIONAL_ONLY", inspect.Parameter.empty),
                       ("out", "POSITIONAL_OR_KEYWORD", None)]),
])
def test_signatures(name, params):
    """inspect.signature works and shows the documented parameters, kinds and defaults."""
    func = getattr(fastrelu, name)
    sig = inspect.signature(func)
    got = [(p.name, p.kind.name, p.default) for p in sig.parameters.values()]
    assert got == params
    assert func.__doc__ and func.__doc__.strip()
    assert func.__name__ == name


def test_config_function_signatures():
    """The thread functions have inspectable signatures too."""
    assert list(inspect.signature(fastrelu.set_num_threads).parameters) == ["n"]
    assert list(inspect.signature(fastrelu.num_threads).parameters) == ["n"]
    assert list(inspect.signature(fastrelu.get_num_threads).parameters) == []


@pytest.mark.parametrize("name, nin, nout", [("ufunc_relu", 1, 1), ("ufunc_relu_grad", 1, 1),
                                              ("ufunc_relu_backward", 2, 1)])
def test_ufuncs_exist(name, nin, nout):
    """The ufuncs are np.ufunc objects with the expected nin/nout and a loop for every
    supported dtype (same type in and out)."""
    uf = getattr(ufuncs, name.replace("ufunc_", ""))
    assert isinstance(uf, np.ufunc)
    assert (uf.nin, uf.nout, uf.nargs) == (nin, nout, nin + nout)
    chars = {dt.char for dt in oracle.ALL_DTYPES}
    loop_chars = set()
    for t in uf.types:
        ins, outs = t.split("->")
        assert len(set(ins + outs)) == 1, t        # every operand the same type
        loop_chars.add(outs)
    # every supported type has a loop (int64 may be listed as 'l' and/or 'q')
    for c in chars:
        assert np.dtype(c).num in {np.dtype(lc).num for lc in loop_chars} or \
            any(np.dtype(lc) == np.dtype(c) for lc in loop_chars), c
    assert uf.__doc__


@pytest.mark.parametrize("dtype", oracle.DTYPE_NAMES)
def test_ufuncs_compute_the_oracle(dtype, values):
    """Called directly, the ufuncs give the oracle's bits (contiguous and strided)."""
    x = values(dtype, 301)
    g = values(dtype, 301)
    for xs, gs in ((x, g), (x[::3], g[::3]), (x[::-1], g)):
        assert_same(ufuncs.relu(xs), oracle.relu(xs))
        assert_same(ufuncs.relu_grad(xs), oracle.relu_grad(xs))
        assert_same(ufuncs.relu_backward(gs, xs), oracle.relu_backward(gs, xs))


def test_public_functions_match_ufuncs(values):
    """fastrelu.relu and the ufunc agree on 2-D inputs of every layout."""
    x = values("float32", 60).reshape(6, 10)
    for v in (x, x.T, x[::2, 1::3], np.asfortranarray(x)):
        assert_same(fastrelu.relu(v), ufuncs.relu(v))
        assert_same(fastrelu.relu_grad(v), ufuncs.relu_grad(v))
